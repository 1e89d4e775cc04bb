"""``medcl core hvs``: the low-level vision probe of any encoder (heavy imports inside
commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .hvs_encoders import ENCODER_HELP

app = typer.Typer(
    name="hvs",
    help="Low-level vision probe of an encoder against human contrast sensitivity, masking and "
    "matching (Cai et al., CVPR 2025).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Probe encoders with psychophysical stimuli."""


@app.command()
def tests() -> None:
    """The nine tests and the human reference each is scored against."""
    from medcl.contrastive.hvs.battery import TESTS

    for key, test in TESTS.items():
        typer.echo(f"{key:20s} {test.title} [{test.reference}]")


@app.command()
def run(
    encoder: Annotated[str, typer.Option(help=ENCODER_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
    tests: Annotated[str, typer.Option(
        help="Comma-separated tests (default: all nine; `medcl core hvs tests` lists them).")]
    = "",
    conditions: Annotated[int, typer.Option(
        help="Conditions per test (frequencies, luminances, ...; the paper uses 20).")] = 8,
    ratios: Annotated[int, typer.Option(
        help="Contrast ratios to the human threshold per condition, in [0.5, 2].")] = 10,
    steps: Annotated[int, typer.Option(help="Bisection steps per threshold search.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per encoder call.")] = 32,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-test lines.")] = False,
) -> None:
    """Run the tests on one encoder: hvs.csv/.md (Spearman, RMSE per test), curves.csv, one
    figure per test, report.md."""
    from .hvs_runner import HVSConfig, run_hvs

    cfg = HVSConfig(encoder=encoder, conditions=conditions, ratios=ratios, steps=steps,
                    batch_size=batch_size, device=device,
                    tests=[t.strip() for t in tests.split(",") if t.strip()])
    run_hvs(cfg, out, progress=not quiet)
    typer.echo(f"report: {Path(out) / 'report.md'}")

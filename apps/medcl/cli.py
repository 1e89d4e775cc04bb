"""The umbrella ``medcl`` command.

Heavy libraries (torch, monai, mne, braindecode, ...) are imported inside commands only, so
``medcl --help`` and every group's ``--help`` answer quickly. App groups come from the entry
point group ``medcl.apps`` (``name = "package.module:typer_app"``) and are loaded on first use;
a third-party package can add its own group the same way.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

APPS_GROUP = "medcl.apps"


class _LazyAppsGroup(TyperGroup):
    """A click group whose app sub-groups are imported from entry points when first needed."""

    def _app_entry_points(self) -> dict:
        return {ep.name: ep for ep in entry_points(group=APPS_GROUP)}

    def list_commands(self, ctx: Any) -> list[str]:
        own = super().list_commands(ctx)
        return own + sorted(n for n in self._app_entry_points() if n not in own)

    def get_command(self, ctx: Any, name: str) -> Any:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        ep = self._app_entry_points().get(name)
        if ep is None:
            return None
        sub = typer.main.get_command(ep.load())
        sub.name = name
        return sub


app = typer.Typer(
    name="medcl",
    cls=_LazyAppsGroup,
    help="Contrastive learning for medical images and EEG: DB-SAM segmentation, PI-RADS "
    "prostate zones, MVCNet motor-imagery decoding, SepCLR contrastive analysis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _add_cards() -> None:
    from medcl.cards import app as cards_app

    app.add_typer(cards_app, name="cards")


def _add_evaluate() -> None:
    from medcl.evaluate import evaluate, report

    app.command(name="evaluate")(evaluate)
    app.command(name="report")(report)


@app.command()
def info() -> None:
    """Versions, device, threads and CUDA: paste this into a bug report."""
    from rich.console import Console
    from rich.table import Table

    from medcl.system import system_info

    table = Table(title="medcl environment", show_header=False)
    for key, value in system_info().items():
        table.add_row(key, str(value))
    Console().print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder of the tour.")] = Path(
        "runs/demo"),
    only: Annotated[str | None, typer.Option(
        help="Comma-separated steps to run (default: all). See --list.")] = None,
    list_steps: Annotated[bool, typer.Option("--list", help="List the steps and exit.")] = False,
    epochs: Annotated[int | None, typer.Option(
        help="Override each step's training epochs (e.g. 2 for a smoke run).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """A tour of the suite on data that ships with its packages; writes OUT/report.md."""
    from medcl.demo import available_steps, run_tour

    steps = available_steps()
    if list_steps:
        for name, step in steps.items():
            typer.echo(f"{name}: {step.description}")
        return
    wanted = list(steps) if only is None else [s.strip() for s in only.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in steps]
    if unknown:
        raise typer.BadParameter(f"unknown step(s) {unknown}; choose from {list(steps)}",
                                 param_hint="--only")
    report = run_tour(out, [steps[s] for s in wanted], epochs=epochs, seed=seed)
    typer.echo(f"report: {report}")


_add_cards()
_add_evaluate()


def main() -> None:
    """Console entry point: a MedclError becomes one clear line on stderr and exit code 2."""
    from medcl.io.errors import MedclError

    try:
        app()
    except MedclError as err:
        typer.secho(f"error: {err}", fg="red", err=True)
        sys.exit(err.exit_code)


if __name__ == "__main__":
    main()

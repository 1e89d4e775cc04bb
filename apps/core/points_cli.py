"""``medcl core points``: pretrain, embed, evaluate and compare point-cloud methods (FAC,
PointContrast, cloud SimCLR); heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="points",
    help="Point-cloud methods (FAC, PointContrast, cloud SimCLR) on PLY/LAS/LAZ/NPY/NPZ clouds.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = "scenes (generated rooms), a cloud file, or a folder of PLY/LAS/LAZ/NPY/NPZ clouds."


def _fractions(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers",
                                 param_hint="--label-fraction") from err


@app.callback()
def _group() -> None:
    """Pretrain, embed, evaluate and compare."""


@app.command()
def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    method: Annotated[str, typer.Option(help="fac, pointcontrast or simclr.")] = "fac",
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "scenes",
    backbone: Annotated[str, typer.Option(help="dgcnn or pointnet.")] = "dgcnn",
    points: Annotated[int, typer.Option(help="Points per view.")] = 4096,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Clouds per step.")] = 4,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-3,
    temperature: Annotated[float | None, typer.Option(
        help="Loss temperature (default: fac 0.1, pointcontrast 0.4, simclr 0.5).")] = None,
    scenes: Annotated[int, typer.Option(help="Training rooms for --data scenes.")] = 24,
    label_fraction: Annotated[str, typer.Option(
        help="Label fractions of the probes, comma-separated.")] = "0.01,0.1,1",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Pretrain a point encoder; probes on held-out clouds when labelled."""
    from .points_train import PointsConfig, pretrain_run

    cfg = PointsConfig(method=method, data=data, backbone=backbone, points=points,
                       epochs=epochs, batch_size=batch_size, lr=lr, temperature=temperature,
                       scenes=scenes, fractions=_fractions(label_fraction), seed=seed)
    typer.echo(f"report: {pretrain_run(cfg, out, progress=not quiet)}")


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core points pretrain`.")],
    data: Annotated[Path, typer.Option(help="A cloud file or a folder of clouds.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet or .csv).")],
    per: Annotated[str, typer.Option(help="point (one row per point) or cloud.")] = "point",
) -> None:
    """Frozen encoder features of every point (or every cloud, max + mean pooled)."""
    from .points_train import embed_run

    typer.echo(f"{embed_run(model, data, out, per)} rows -> {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core points pretrain`.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
    labels: Annotated[Path | None, typer.Option(
        help="Folder of <stem>.npy per-point labels (default: labels inside the files).")]
    = None,
    label_fraction: Annotated[str, typer.Option(
        help="Label fractions of the probes, comma-separated.")] = "0.01,0.1,1",
    seed: Annotated[int, typer.Option(help="Seed of the split and label sampling.")] = 0,
) -> None:
    """Per-point linear probe mIoU and cloud accuracy of a pretrained encoder."""
    from .points_train import evaluate_run

    report = evaluate_run(model, data, labels, _fractions(label_fraction), out, seed=seed)
    typer.echo(f"report: {report}")


@app.command()
def compare(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (resumable).")],
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")]
    = "fac,pointcontrast,simclr",
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "scenes",
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    backbone: Annotated[str, typer.Option(help="dgcnn or pointnet.")] = "pointnet",
    points: Annotated[int, typer.Option(help="Points per view.")] = 1024,
    epochs: Annotated[int, typer.Option(help="Training epochs per unit.")] = 4,
    batch_size: Annotated[int, typer.Option(help="Clouds per step.")] = 4,
    scenes: Annotated[int, typer.Option(help="Training rooms for --data scenes.")] = 12,
    label_fraction: Annotated[str, typer.Option(
        help="Label fractions of the probes, comma-separated.")] = "0.01,0.1",
    budget_minutes: Annotated[float | None, typer.Option(
        help="Instead of --epochs: training wall-clock budget shared by all units.")] = None,
    shard: Annotated[str | None, typer.Option(
        help="Run only share K of N of the units (K/N, K from 0).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Every method under one harness and the same probes (mean ± std over seeds).

    One unit = method x seed; rows go to OUT/units.csv as units finish and compare.csv,
    compare.md and compare.png are rebuilt; rerunning the same command runs only the missing
    units."""
    from medcl.io.cli import int_list
    from medcl.io.units import parse_shard

    from .points_compare import compare_run
    from .points_train import PointsConfig

    base = PointsConfig(data=data, backbone=backbone, points=points, epochs=epochs,
                        batch_size=batch_size, scenes=scenes,
                        fractions=_fractions(label_fraction))
    chosen = [m.strip() for m in methods.split(",") if m.strip()] or None
    budget = None if budget_minutes is None else budget_minutes * 60.0
    typer.echo(compare_run(out, base, methods=chosen, seeds=int_list(seeds, "--seeds"),
                           budget_seconds=budget, progress=not quiet, shard=parse_shard(shard)))

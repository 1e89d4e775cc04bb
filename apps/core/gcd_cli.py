"""``medcl core gcd``: generalized category discovery on long-tailed data (BaCon, GCD,
SimGCD); heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="gcd",
    help="Long-tailed generalized category discovery: BaCon and the GCD / SimGCD baselines.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = ("digits-lt (long-tailed scikit-learn digits), cifar10-lt:DIR (a folder of CIFAR-10 "
             "images, one subfolder per class, made long-tailed) or DIR (used as it is).")


@app.callback()
def _group() -> None:
    """Train and evaluate category discovery."""


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    known: Annotated[str, typer.Option(help="Comma-separated known (labelled) classes.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "digits-lt",
    method: Annotated[str, typer.Option(help="bacon, gcd or simgcd.")] = "bacon",
    imbalance: Annotated[float, typer.Option(
        help="Head / tail class-size ratio of the -lt data.")] = 100.0,
    label_fraction: Annotated[float, typer.Option(
        help="Share of each known class that is labelled.")] = 0.5,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 128,
    seed: Annotated[int, typer.Option(help="Random seed (split, init, augmentations).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Train one method; All / Old / New accuracy on the unlabelled training images."""
    from .gcd_train import GCDConfig, train_run

    cfg = GCDConfig(method=method, data=data, known=known, imbalance=imbalance,
                    label_fraction=label_fraction, epochs=epochs, batch_size=batch_size,
                    seed=seed)
    typer.echo(f"report: {train_run(cfg, out, progress=not quiet)}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core gcd train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
    data: Annotated[str | None, typer.Option(
        help=DATA_HELP + " Default: the run's.")] = None,
    imbalance: Annotated[float | None, typer.Option(
        help="Imbalance of -lt data (default: the run's).")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Seed of the -lt subsample and k-means (default: the run's).")] = None,
) -> None:
    """All / Old / New accuracy of a trained run on every image of --data."""
    from .gcd_train import evaluate_run

    typer.echo(f"report: {evaluate_run(model, data, out, imbalance, seed)}")

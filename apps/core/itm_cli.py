"""``medcl core itm``: image-text matching, VSE++ baseline and DBL (Deep Boosting Learning,
IEEE TIP 2024) with cooperative inference (heavy imports inside commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .t2i_cli import DATA_HELP  # the same image + caption data as `medcl core t2i`

app = typer.Typer(
    name="itm",
    help="Image-text matching: VSE++ and DBL (anchor + target branch, boost loss).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Train and evaluate."""


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "shapes",
    method: Annotated[str, typer.Option(help="vse or dbl.")] = "dbl",
    anchor: Annotated[str, typer.Option(
        help="DBL anchor: joint (trained together, default), ema (moving average of the "
        "target) or frozen (--anchor-run).")] = "joint",
    anchor_run: Annotated[Path | None, typer.Option(
        help="A `--method vse` run folder: the frozen anchor.")] = None,
    boost: Annotated[str, typer.Option(help="DBL boost loss: rel or abs.")] = "rel",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    image_size: Annotated[int, typer.Option(help="Square image size.")] = 64,
    n_shapes: Annotated[int, typer.Option(help="Scenes generated for --data shapes.")] = 800,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Train one matching model; retrieval on held-out images in the report."""
    from .itm_train import ITMConfig, train_run

    cfg = ITMConfig(data=data, method=method, anchor=anchor,
                    anchor_run=None if anchor_run is None else str(anchor_run), boost=boost,
                    epochs=epochs, batch_size=batch_size, lr=lr, image_size=image_size,
                    n_shapes=n_shapes, seed=seed)
    typer.echo(f"report: {train_run(cfg, out, progress=not quiet)}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core itm train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")],
    data: Annotated[str, typer.Option(help="shapes (a fresh unseen set) or a folder with "
                                      "captions.csv.")] = "shapes",
) -> None:
    """R@1/5/10 image->text and text->image and rSum (CSV + Markdown); DBL adds anchor,
    target and cooperative rows."""
    from .itm_train import evaluate_run

    typer.echo(f"report: {evaluate_run(model, data, out)}")

"""``medcl core image``: pretrain, compare and embed with the core's image methods (heavy
imports inside commands, so ``medcl --help`` stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="image",
    help="Image methods (SimCLR, DCL, SupCon, CACR, AMCL, MV-InfoNCE, MV-DHEL, SwAV, FT, Hydra).",
    no_args_is_help=True,
    add_completion=False,
)

METHOD_HELP = ("simclr, dcl, dclw, supcon, cacr, amcl, mv-infonce, mv-dhel, swav, ft or hydra "
               "(`medcl core image methods` lists the installed ones).")
DATA_HELP = "digits, textures, or a folder of PNG/JPG images (subfolders as classes)."


@app.callback()
def _group() -> None:
    """Pretrain, compare and embed."""


@app.command()
def methods() -> None:
    """The image methods, their papers and whether this installation has them."""
    from .recipes import RECIPES, available

    have = set(available())
    for name, recipe in RECIPES.items():
        state = "available" if name in have else f"missing {recipe.module}"
        labels = ", needs labels" if recipe.needs_labels else ""
        typer.echo(f"{name:11s} {recipe.paper}{labels} [{state}]")


@app.command()
def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    method: Annotated[str, typer.Option(help=METHOD_HELP)] = "simclr",
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "digits",
    labels: Annotated[Path | None, typer.Option(
        help="CSV with columns file,label (file relative to the --data folder).")] = None,
    views: Annotated[int | None, typer.Option(
        help="Augmented views per image, 2..8 (default: the method's).")] = None,
    backbone: Annotated[str, typer.Option(help="small (3-block CNN) or resnet18.")] = "small",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 256,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-3,
    temperature: Annotated[float | None, typer.Option(
        help="Loss temperature (default: the method's paper value).")] = None,
    image_size: Annotated[int | None, typer.Option(
        help="Resize folder images to this square size (default: their most common size).")]
    = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Resume from OUT/checkpoints/last.pt.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Pretrain an encoder with one method; probes on held-out images when labelled."""
    from .config import ImageConfig
    from .train import pretrain_run

    cfg = ImageConfig(method=method, data=data, labels=None if labels is None else str(labels),
                      views=views, backbone=backbone, epochs=epochs, batch_size=batch_size,
                      lr=lr, temperature=temperature, image_size=image_size, seed=seed)
    report = pretrain_run(cfg, out, resume=resume, progress=not quiet)
    typer.echo(f"report: {report}")


@app.command()
def compare(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (resumable).")],
    methods: Annotated[str, typer.Option(
        help="Comma-separated methods (default: every installed one).")] = "",
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "digits",
    labels: Annotated[Path | None, typer.Option(help="CSV file,label for a folder.")] = None,
    budget_minutes: Annotated[float, typer.Option(
        help="Training wall-clock budget of the whole comparison, shared equally by every "
        "method x seed.")] = 1.0,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    views: Annotated[int | None, typer.Option(
        help="Views per image for every method, 2..8 (default: each method's).")] = None,
    backbone: Annotated[str, typer.Option(help="small or resnet18.")] = "small",
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 256,
    shard: Annotated[str | None, typer.Option(
        help="Run only share K of N of the units (K/N, K from 0).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Every method at an equal wall-clock budget, same backbone, augmentations and probes.

    One unit = method x seed; each unit's row goes to OUT/units.csv as it finishes and
    compare.csv, compare.md and compare.png are rebuilt; rerunning the same command runs only
    the missing units. A failed unit exits with status 2 after the others finish."""
    from medcl.io.cli import int_list
    from medcl.io.units import parse_shard

    from .compare import compare_run
    from .config import ImageConfig

    base = ImageConfig(data=data, labels=None if labels is None else str(labels), views=views,
                       backbone=backbone, batch_size=batch_size)
    chosen = [m.strip() for m in methods.split(",") if m.strip()] or None
    typer.echo(compare_run(out, base, methods=chosen, seeds=int_list(seeds, "--seeds"),
                           budget_seconds=budget_minutes * 60.0, progress=not quiet,
                           shard=parse_shard(shard)))


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl core image "
                                        "pretrain`.")],
    images: Annotated[Path, typer.Option(help="Folder of PNG/JPG images to embed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet or .csv).")],
) -> None:
    """Encoder features of every image in a folder, one row per image (file, z_0, ...)."""
    from .infer import embed_folder

    table = embed_folder(model, images, out)
    typer.echo(f"{len(table)} images -> {out}")

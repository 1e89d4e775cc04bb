"""``medcl core t2i``: text-to-image synthesis with label-guided supervised contrast (Liu et al.,
arXiv 2412.03957) on a DF-GAN-style GAN (heavy imports inside commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="t2i",
    help="Text to image: DAMSM + SupCon encoders, a light GAN with label SupCon, generate, "
    "evaluate.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = ("shapes (generated offline) or a folder of images with captions.csv "
             "(file,caption[,label]).")


@app.callback()
def _group() -> None:
    """Pretrain encoders, train the GAN, generate and evaluate."""


@app.command()
def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "shapes",
    image_size: Annotated[int, typer.Option(help="Image size: 32, 64, 128 or 256.")] = 64,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-3,
    supcon_weight: Annotated[float, typer.Option(
        help="Weight of the label SupCon term (0: DAMSM only).")] = 1.0,
    n_shapes: Annotated[int, typer.Option(help="Scenes generated for --data shapes.")] = 800,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Text and image encoders with DAMSM word/sentence matching plus label SupCon."""
    from .t2i_train import EncoderConfig, pretrain_run

    cfg = EncoderConfig(data=data, image_size=image_size, epochs=epochs, batch_size=batch_size,
                        lr=lr, supcon_weight=supcon_weight, n_shapes=n_shapes, seed=seed)
    typer.echo(f"report: {pretrain_run(cfg, out, progress=not quiet)}")


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    encoders: Annotated[Path, typer.Option(help="Run folder of `medcl core t2i pretrain`.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "shapes",
    supcon: Annotated[str, typer.Option(help="on: label SupCon on the two branches' images; "
                                        "off: the plain GAN baseline.")] = "on",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    batch_size: Annotated[int, typer.Option(help="Images per batch.")] = 32,
    width: Annotated[int, typer.Option(help="Base width of generator and discriminator.")] = 16,
    n_shapes: Annotated[int, typer.Option(help="Scenes generated for --data shapes.")] = 800,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """The GAN at the encoders' image size, with or without label SupCon."""
    from medcl.io.errors import ConfigError

    from .t2i_train import GANConfig, train_run

    if supcon not in ("on", "off"):
        raise ConfigError(f"--supcon {supcon!r} must be on or off")
    cfg = GANConfig(data=data, encoders=str(encoders), supcon=supcon == "on", epochs=epochs,
                    batch_size=batch_size, ngf=width, ndf=width, n_shapes=n_shapes, seed=seed)
    typer.echo(f"report: {train_run(cfg, out, progress=not quiet)}")


@app.command()
def generate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core t2i train`.")],
    text: Annotated[str, typer.Option(help="The caption to draw.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")],
    n: Annotated[int, typer.Option(help="Images to generate.")] = 8,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
) -> None:
    """Images of one caption: OUT/grid.png and OUT/images/sample_K.png."""
    from .t2i_train import generate_run

    grid, unknown = generate_run(model, text, n, out, seed)
    if unknown:
        typer.echo(f"note: unknown words mapped to <unk>: {', '.join(unknown)}", err=True)
    typer.echo(f"grid: {grid}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core t2i train`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write.")],
    data: Annotated[str, typer.Option(help="shapes (a fresh unseen set) or a folder with "
                                      "captions.csv.")] = "shapes",
    inception: Annotated[Path | None, typer.Option(
        help="Inception weights file: adds FID and IS (needs torch-fidelity).")] = None,
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
) -> None:
    """In-domain Fréchet distance and R-precision (our encoders), grid of real vs generated."""
    from .t2i_train import evaluate_run

    typer.echo(f"report: {evaluate_run(model, data, out, inception, seed)}")

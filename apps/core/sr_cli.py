"""``medcl core sr``: contrastive single-image super-resolution (PCL-SR) with EDSR-baseline;
heavy imports inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="sr",
    help="Super-resolution: EDSR-baseline trained with PCL-SR's contrastive loss or L1 only.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Train, upscale and evaluate."""


@app.command()
def train(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[str, typer.Option(
        help="skimage (shipped scikit-image photographs) or a folder of HR PNG/JPG.")]
    = "skimage",
    scale: Annotated[int, typer.Option(help="Upscaling factor: 2, 3 or 4.")] = 2,
    backbone: Annotated[str, typer.Option(help="edsr-baseline.")] = "edsr-baseline",
    contrast: Annotated[str, typer.Option(
        help="on: L1 + 5 x PCL-SR contrast; off: L1 only (the baseline).")] = "on",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    steps_per_epoch: Annotated[int, typer.Option(help="Batches per epoch.")] = 20,
    batch_size: Annotated[int, typer.Option(help="HR patches per batch.")] = 16,
    patch: Annotated[int, typer.Option(help="HR patch side (a multiple of the scale).")] = 48,
    blocks: Annotated[int, typer.Option(help="EDSR residual blocks (baseline: 16).")] = 16,
    feats: Annotated[int, typer.Option(help="EDSR channels (baseline: 64).")] = 64,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Train EDSR-baseline; PSNR / SSIM on held-out images for --data skimage."""
    from medcl.io.errors import ConfigError

    from .sr_train import SRConfig, train_run

    if contrast not in ("on", "off"):
        raise ConfigError(f"--contrast {contrast!r} must be on or off", fix="give on or off")
    cfg = SRConfig(data=data, scale=scale, backbone=backbone, contrast=contrast == "on",
                   epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                   patch=patch, n_resblocks=blocks, n_feats=feats, seed=seed)
    typer.echo(f"report: {train_run(cfg, out, progress=not quiet)}")


@app.command()
def upscale(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core sr train`.")],
    image: Annotated[Path, typer.Option(help="A PNG/JPG image or a NIfTI volume.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output .png or .nii.gz.")],
) -> None:
    """Upscale a 2-D image, or a NIfTI volume slice by slice in-plane (affine kept
    consistent: in-plane spacing divided by the scale)."""
    from .sr_train import upscale_file

    typer.echo(upscale_file(model, image, out))


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core sr train`.")],
    data: Annotated[str, typer.Option(help="skimage (held-out images) or a folder of HR "
                                      "PNG/JPG.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
) -> None:
    """PSNR / SSIM on the Y channel (border cropped) against bicubic upsampling."""
    from .sr_train import evaluate_run

    typer.echo(f"report: {evaluate_run(model, data, out)}")

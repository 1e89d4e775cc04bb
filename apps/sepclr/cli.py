"""``medcl sepclr``: fit, embed, evaluate, benchmark, textures (heavy imports inside commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medcl.io.cli import app_group, int_list

PAPER = (
    'Louiset et al., "Separating common from salient patterns with Contrastive Representation '
    'Learning", ICLR 2024, arXiv:2402.11928'
)

app = app_group(
    "sepclr",
    "SepCLR: contrastive analysis separating common from salient patterns (healthy "
    "background vs diseased target).",
    paper=PAPER,
    workflow="fit, embed, evaluate on folders of images (PNG/JPG or NIfTI slices); benchmark on "
    "digits-on-textures, with pooled SimCLR and a contrastive VAE as baselines",
)

@app.command()
def fit(
    background: Annotated[Path, typer.Option(help="Folder of background images (e.g. healthy).")],
    target: Annotated[Path, typer.Option(help="Folder of target images (e.g. patients).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    attributes: Annotated[Path | None, typer.Option(
        help="CSV with columns file, group and attributes: held-out probes after training.")]
    = None,
    method: Annotated[str, typer.Option(help="sepclr, or a baseline: simclr, cvae.")] = "sepclr",
    card: Annotated[str | None, typer.Option(
        help="Data card id (e.g. chexpert_subtypes): the authors' loss weights, augmentations "
        "and probe metric for that dataset (`medcl cards list`).")] = None,
    encoder: Annotated[str, typer.Option(
        help="resnet18 (the authors'; CIFAR stem for images <= 64 px) or small (a one-block "
        "MONAI ResNet of --widths, for CPU runs).")] = "resnet18",
    pretrained: Annotated[Path | None, typer.Option(
        help="torchvision ResNet-18 state dict to start from (--encoder resnet18; read from "
        "this file, never downloaded).")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs (paper: 250).")] = 250,
    batch_size: Annotated[int, typer.Option(help="Batch size (paper: 512).")] = 512,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 3e-4).")] = 3e-4,
    common_dim: Annotated[int, typer.Option(help="Common code size.")] = 32,
    salient_dim: Annotated[int, typer.Option(help="Salient code size.")] = 32,
    widths: Annotated[str, typer.Option(
        help="Stage widths of --encoder small, 4 comma-separated ints.")]
    = "16,32,64,128",
    image_size: Annotated[int | None, typer.Option(
        help="Resize images to this square size (default: their most common size).")] = None,
    channels: Annotated[int | None, typer.Option(help="1 or 3 (default: from the images).")]
    = None,
    nifti_slice: Annotated[int | None, typer.Option(
        "--slice", help="Axial slice of 3-D NIfTI volumes (default: the middle one).")] = None,
    holdout: Annotated[float, typer.Option(
        help="Share of images kept out of training to score probes (with --attributes).")]
    = 0.2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Resume from OUT/checkpoints/last.pt.")] = False,
) -> None:
    """Train SepCLR (or a baseline) on a background and a target folder.

    Defaults follow the authors (two ResNet-18, one forward pass per view, SimCLR
    augmentations, loss weights 1/1000/1000/10); --card sets a dataset's weights and extras.
    On a CPU pass --encoder small."""
    from .config import SepCLRConfig
    from .harness import fit_run

    try:
        cfg = SepCLRConfig(method=method, encoder=encoder,
                           pretrained=None if pretrained is None else str(pretrained),
                           epochs=epochs, batch_size=batch_size, lr=lr,
                           common_dim=common_dim, salient_dim=salient_dim,
                           widths=int_list(widths, "--widths"), image_size=image_size,
                           channels=channels, nifti_slice=nifti_slice, holdout=holdout, seed=seed)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    if card is not None:
        from .cards import apply_card

        cfg = apply_card(cfg, card)
    report = fit_run(cfg, background, target, out, attributes=attributes, resume=resume)
    typer.echo(f"report: {report}")


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl sepclr fit`.")],
    images: Annotated[Path, typer.Option(help="Folder of images to embed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet or .csv).")],
) -> None:
    """Common and salient representations of every image in a folder, one row per image."""
    from .infer import embed_folder

    table = embed_folder(model, images, out)
    typer.echo(f"{len(table)} images -> {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl sepclr fit`.")],
    background: Annotated[Path, typer.Option(help="Folder of background images.")],
    target: Annotated[Path, typer.Option(help="Folder of target images.")],
    attributes: Annotated[Path, typer.Option(help="CSV with columns file, group, attributes.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation run folder.")],
    test_fraction: Annotated[float, typer.Option(help="Share of images scoring the probes.")]
    = 0.3,
) -> None:
    """Linear probes of each attribute from each space, leakage summary, t-SNE plots."""
    from .harness import evaluate_run

    report = evaluate_run(model, background, target, attributes, out,
                          test_fraction=test_fraction)
    typer.echo(f"report: {report}")


@app.command()
def benchmark(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (resumable).")]
    = Path("runs/sepclr-benchmark"),
    n: Annotated[int, typer.Option(help="Images per group.")] = 1000,
    epochs: Annotated[int, typer.Option(help="Epochs for every method.")] = 20,
    methods: Annotated[str, typer.Option(help="Comma-separated methods.")]
    = "sepclr,simclr,cvae",
    size: Annotated[int, typer.Option(help="Image size in pixels.")] = 32,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 64,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    encoder: Annotated[str, typer.Option(
        help="small (CPU-sized, the default here) or resnet18 (the authors').")] = "small",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    shard: Annotated[str | None, typer.Option(
        help="Run only share K of N of the methods (K/N, K from 0), e.g. one per SLURM array "
        "task; default: from torchrun/SLURM, else all.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No progress lines and no training bar.")] = False,
) -> None:
    """Digits on textures (generated offline): SepCLR vs pooled SimCLR vs contrastive VAE.

    Each method's row is written to OUT/units.csv as soon as it finishes, and comparison.csv and
    report.md are rebuilt; rerunning the same command on OUT runs only the methods not done
    (failed ones again). A failed method exits with status 2 after the others finish."""
    from medcl.io.units import parse_shard

    from .config import METHODS, SepCLRConfig
    from .harness import benchmark as run_benchmark

    chosen = tuple(m.strip() for m in methods.split(",") if m.strip())
    if not chosen or any(m not in METHODS for m in chosen) or len(set(chosen)) < len(chosen):
        raise typer.BadParameter(f"choose among {METHODS}, each once", param_hint="--methods")
    from .cards import apply_card

    try:
        base = SepCLRConfig(encoder=encoder, widths=[8, 16, 32, 64], common_dim=16,
                            salient_dim=16, batch_size=batch_size, lr=lr)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--encoder") from err
    base = apply_card(base, "digits_on_textures")
    typer.echo(run_benchmark(out, n_per_group=n, size=size, epochs=epochs, methods=chosen,
                             seed=seed, base=base, progress=not quiet,
                             shard=parse_shard(shard)))


@app.command()
def textures(
    out: Annotated[Path, typer.Option("--out", "-o", help="Empty or new folder to write.")],
    n: Annotated[int, typer.Option(help="Images per group.")] = 500,
    size: Annotated[int, typer.Option(help="Image size in pixels.")] = 32,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write the digits-on-textures dataset: OUT/background, OUT/target, OUT/attributes.csv."""
    from .textures import write_digits_on_textures

    folder = write_digits_on_textures(out, n_background=n, n_target=n, size=size, seed=seed)
    typer.echo(f"wrote {2 * n} images and attributes.csv to {folder}")

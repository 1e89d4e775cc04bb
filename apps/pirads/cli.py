"""``medcl pirads``: phantom, train, segment, evaluate (typer; heavy imports inside commands)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medcl.io.cli import app_group, int_list

from .zones import ZONE_LEGEND, ZONES

PAPER = (
    'Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using '
    'co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970'
)

app = app_group(
    "pirads",
    f"PI-RADS v2 prostate zones ({', '.join(ZONES.values())}) with a co-trained dual-path 3D "
    "CNN.",
    paper=PAPER,
    workflow="phantom, train, segment, evaluate on T2-weighted NIfTI volumes",
)


LABEL_MAP_HELP = (f"The label files' codes -> ours ({ZONE_LEGEND}) as "
                  "source:target pairs, e.g. '1:2,2:1'; every non-zero code must be listed.")
CHANNEL_HELP = "Channel (0-based) to use of 4-D (X, Y, Z, C) input files."
PRESET_HELP = ("Network and crop size: 'paper' (filters 16-256, crop 168x168x32; about 50 s "
               "per training step on 2 CPU cores: for a GPU) or 'cpu' (filters 8-64, crop "
               "96x96x24, the demo's size: a few seconds per step). --filters and --crop "
               "override it.")
CARD_HELP = ("Read the label mapping from this PI-RADS data card (its labels' '-> medcl N'), "
             "e.g. prostate158, msd_task05_prostate.")


def _label_map(label_map: str | None, card: str | None):
    from .labels import resolve_label_map

    return resolve_label_map(label_map, card)


def _tty() -> bool:
    return sys.stderr.isatty()


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for images/ and labels/.")],
    n: Annotated[int, typer.Option(help="Number of phantom cases.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write T2-like phantom volumes with zone labels (NIfTI, nnU-Net-style pairs)."""
    from medcl.io import ConfigError

    from .phantom import write_phantoms

    if n < 1:
        raise typer.BadParameter(f"must be at least 1, got {n}", param_hint="--n")
    if out.exists() and not out.is_dir():
        raise ConfigError("exists and is not a folder", path=out,
                          fix="pass a new or existing folder to --out")
    images, labels = write_phantoms(out, n=n, seed=seed)
    typer.echo(f"{n} cases: {images} and {labels}")


@app.command()
def train(
    images: Annotated[Path, typer.Option(help="Folder of T2 volumes (case.nii.gz).")],
    labels: Annotated[Path, typer.Option(help="Folder of zone labels, same file names.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    unlabelled: Annotated[Path | None, typer.Option(
        help="Folder of unlabelled T2 volumes for the co-training stage.")] = None,
    epochs: Annotated[int, typer.Option(help="Stage 1 (supervised) epochs.")] = 100,
    cotrain_epochs: Annotated[int, typer.Option(help="Stage 2 (co-training) epochs.")] = 20,
    preset: Annotated[str, typer.Option(help=PRESET_HELP)] = "paper",
    filters: Annotated[str | None, typer.Option(
        help="Filters per level, 5 comma-separated ints (default: the preset's).")] = None,
    crop: Annotated[str | None, typer.Option(
        help="Training crop X,Y,Z in voxels at 0.5x0.5x3 mm, centred on the labelled gland "
        "with a random offset (default: the preset's).")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = 2,
    lr: Annotated[float, typer.Option(
        help="Adam learning rate at the start of each stage (cosine schedule to lr/100).")]
    = 1e-3,
    val_fraction: Annotated[float, typer.Option(
        help="Share of the labelled cases held out to pick each stage's best epoch by "
        "validation Dice (model.pt; the last epoch: last.pt); 0: keep the last epoch.")] = 0.2,
    patience: Annotated[int, typer.Option(
        help="Stop a stage after this many epochs without a better validation Dice "
        "(0: never).")] = 0,
    augment: Annotated[bool, typer.Option(
        help="3-D augmentation (affine, smooth deformation, intensity, bias field, noise; "
        "no left-right flip).")] = True,
    channel: Annotated[int | None, typer.Option(help=CHANNEL_HELP)] = None,
    consistency_weight: Annotated[float, typer.Option(
        help="Weight of the branches' consistency in stage 2 (ramped up over its first half).")]
    = 1.0,
    label_map: Annotated[str | None, typer.Option(help=LABEL_MAP_HELP)] = None,
    card: Annotated[str | None, typer.Option(help=CARD_HELP)] = None,
    baseline: Annotated[bool, typer.Option(help="Also train the single-path UNet.")] = True,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Two-stage training of the dual-path network (and the single-path baseline).

    After the first epoch the time per epoch and the projected time of the run are printed.
    On a CPU use --preset cpu: at the paper's size one step takes about 50 s on 2 cores."""
    from .config import PiradsConfig
    from .harness import train_run

    try:
        cfg = PiradsConfig.preset(
            preset, epochs=epochs, cotrain_epochs=cotrain_epochs,
            filters=None if filters is None else int_list(filters, "--filters"),
            crop=None if crop is None else int_list(crop, "--crop"), batch_size=batch_size,
            lr=lr, channel=channel, seed=seed, consistency_weight=consistency_weight,
            val_fraction=val_fraction, patience=patience, augment=augment)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    report = train_run(cfg, images, labels, out, unlabelled=unlabelled, baseline=baseline,
                       label_map=_label_map(label_map, card))
    typer.echo(f"report: {report}")


@app.command()
def segment(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl pirads train`.")],
    t2: Annotated[Path, typer.Option(
        help="Axial T2-weighted volume (.nii/.nii.gz) or a folder holding one DICOM series.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Zone label map to write (.nii.gz; "
                                      ".dcm writes a DICOM SEG when --t2 is DICOM).")],
    sectors: Annotated[Path | None, typer.Option(help="Also write the sector map here.")]
    = None,
    report: Annotated[Path | None, typer.Option(help="Also write a JSON report here.")] = None,
    channel: Annotated[int | None, typer.Option(help=CHANNEL_HELP)] = None,
    series: Annotated[str | None, typer.Option(
        help="SeriesInstanceUID to read when the --t2 folder holds several series.")] = None,
) -> None:
    """Zones (0 background, 1 PZ, 2 TZ, 3 DPU, 4 AFS) in the scan's own geometry."""
    from .harness import load_run
    from .infer import check_outputs, segment_file

    check_outputs(t2, out, sectors, report)
    cfg, net = load_run(model)
    info = segment_file(net, cfg, t2, out, sectors=sectors, report=report, channel=channel,
                        progress=_tty(), warn=lambda m: typer.echo(f"warning: {m}", err=True),
                        series=series)
    vols = ", ".join(f"{k} {v:.2f} mL" for k, v in info["volumes_ml"].items())
    typer.echo(f"{out}: {vols}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl pirads train`.")],
    images: Annotated[Path, typer.Option(help="Folder of T2 volumes.")],
    labels: Annotated[Path, typer.Option(help="Folder of zone labels.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder.")],
    baseline: Annotated[str | None, typer.Option(
        help="'unet' to evaluate the run's single-path baseline too.")] = None,
    label_map: Annotated[str | None, typer.Option(help=LABEL_MAP_HELP)] = None,
    card: Annotated[str | None, typer.Option(help=CARD_HELP)] = None,
    channel: Annotated[int | None, typer.Option(help=CHANNEL_HELP)] = None,
    shard: Annotated[str | None, typer.Option(
        help="Score only share K of N of the cases (K/N, K from 0), e.g. one per SLURM array "
        "task; default: from torchrun/SLURM, else all.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No progress (default: a bar on a terminal, else a line per case).")]
    = False,
) -> None:
    """Per-zone Dice, MASD and HD95 per case, with a summary; zones the labels do not have (see
    --label-map / --card) are reported as 'not labelled'. Rows are written to OUT/cases.csv as
    each case finishes; a rerun into the same --out skips the cases already scored and retries
    the failed ones; an --out holding an evaluation of other inputs is refused."""
    from medcl.io.units import failed_message, parse_shard

    from .harness import evaluate_run

    if baseline not in (None, "unet"):
        raise typer.BadParameter("only 'unet' is available", param_hint="--baseline")
    report = evaluate_run(model, images, labels, out, baseline=baseline == "unet",
                          label_map=_label_map(label_map, card), channel=channel,
                          progress=not quiet, shard=parse_shard(shard))
    typer.echo(f"report: {report}")
    failed = failed_message(Path(out) / "cases.csv", ["method", "case_id"], what="case")
    if failed:
        typer.echo(failed, err=True)
        raise typer.Exit(2)

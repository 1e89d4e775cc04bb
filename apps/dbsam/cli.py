"""``medcl dbsam``: phantom, train, segment, evaluate (typer; heavy imports inside commands)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medcl.io.cli import app_group, int_list

PAPER = (
    'Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation", '
    'MICCAI 2024, arXiv:2410.04172'
)

app = app_group(
    "dbsam",
    "DB-SAM: dual-branch adapted Segment Anything for 2D and 3D medical image "
    "segmentation.",
    paper=PAPER,
    workflow="phantom, train, segment, evaluate on NIfTI volumes, 2D PNG/JPG images and "
    "MedSAM-on-Laptop npz cases; SAM ViT or LiteMedSAM backbone",
)


# kept in step with dbsam.preprocess.CT_PRESETS by a test (help must not import torch)
PRESETS = "soft-tissue (40,400), abdomen, liver, mediastinum, lung, bone, brain"


def _window(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        level, width = (float(v) for v in text.split(","))
    except ValueError as err:
        raise typer.BadParameter(f"expected LEVEL,WIDTH (e.g. 40,400), got {text!r}",
                                 param_hint="--window") from err
    return [level, width]


@app.command()
def phantom(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for images/ and labels/.")],
    n: Annotated[int, typer.Option(help="Number of phantom volumes.")] = 8,
    modality: Annotated[str, typer.Option(help="ct (Hounsfield units) or mr.")] = "ct",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write CT/MR-like phantom volumes with two organs (NIfTI, nnU-Net-style pairs)."""
    from .phantom import write_phantoms

    images, labels = write_phantoms(out, n=n, seed=seed, modality=modality)
    typer.echo(f"{n} cases: {images} and {labels}")


@app.command()
def train(
    images: Annotated[Path, typer.Option(
        help="Folder of images: case.nii.gz volumes (or PNG/JPG slices, or challenge .npz "
        "cases).")],
    labels: Annotated[Path, typer.Option(
        help="Folder of label maps, same case names (for .npz: files holding gts).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    sam_checkpoint: Annotated[Path | None, typer.Option(
        help="Official weights: SAM (sam_vit_b_01ec64.pth ...) or LiteMedSAM "
        "(lite_medsam.pth); architecture from --arch.")] = None,
    arch: Annotated[str, typer.Option(
        help="tiny, vit_b, vit_l, vit_h or litemedsam (TinyViT, 256² input).")] = "vit_b",
    image_size: Annotated[int | None, typer.Option(
        help="Encoder input side, multiple of 16 (default 1024; 256 for litemedsam, its "
        "only size).", show_default=False)] = None,
    modality: Annotated[str, typer.Option(help="ct (windowed) or mr (percentile-clipped).")]
    = "ct",
    window: Annotated[str | None, typer.Option(help="CT window LEVEL,WIDTH (default 40,400).")]
    = None,
    preset: Annotated[str | None, typer.Option(
        help=f"CT window preset (default soft-tissue): {PRESETS}.")] = None,
    label_codes: Annotated[str | None, typer.Option(
        "--label-codes", help="Label codes to learn, e.g. 1,2 (default: all).")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 20,
    batch_size: Annotated[int, typer.Option(help="Slices per batch.")] = 2,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 1e-4,
    channel: Annotated[int | None, typer.Option(help="Channel of 4-D inputs.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(
        help="Continue an interrupted run from OUT/checkpoints/last.pt.")] = False,
) -> None:
    """Fine-tune DB-SAM (adapters, conv branch, cross-attention, fusion, decoder) on box prompts;
    the SAM or LiteMedSAM encoder stays frozen."""
    from .config import DBSAMConfig
    from .harness import train_run

    try:
        cfg = DBSAMConfig(
            arch=arch, image_size=image_size,
            sam_checkpoint=None if sam_checkpoint is None else str(sam_checkpoint),
            modality=modality, window=_window(window), preset=preset or "soft-tissue",
            channel=channel,
            labels=int_list(label_codes, "--label-codes") if label_codes else None,
            epochs=epochs, batch_size=batch_size, lr=lr, accelerator=device, seed=seed)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err
    if preset is not None and (modality != "ct" or window is not None):
        raise typer.BadParameter("a preset is a CT window: use it with --modality ct and "
                                 "without --window", param_hint="--preset")
    if sam_checkpoint is None and arch != "tiny":
        typer.echo(f"note: no --sam-checkpoint: {arch} starts from random weights", err=True)
    typer.echo(f"report: {train_run(cfg, images, labels, out, resume=resume)}")


@app.command()
def segment(
    image: Annotated[Path, typer.Option(help="Volume (.nii/.nii.gz, or a DICOM series folder: "
                                        "--out *.dcm writes a DICOM SEG), 2-D image "
                                        "(.png/.jpg) or MedSAM-on-Laptop case (.npz: imgs + "
                                        "boxes, prompted by its own boxes).")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Mask to write (.nii.gz, .png, .dcm DICOM SEG for a DICOM series "
        "in, or .npz with segs).")],
    model: Annotated[Path | None, typer.Option(help="Run folder of `medcl dbsam train`.")]
    = None,
    sam_checkpoint: Annotated[Path | None, typer.Option(
        help="Vanilla SAM or LiteMedSAM weights instead of a trained run.")] = None,
    arch: Annotated[str, typer.Option(
        help="Architecture of --sam-checkpoint: vit_b, vit_l, vit_h or litemedsam.")]
    = "vit_b",
    box: Annotated[list[str] | None, typer.Option(
        help="3-D box X0,Y0,Z0,X1,Y1,Z1 in voxel indices (inclusive); repeat as "
        "CODE=X0,... for a label map of several structures.")] = None,
    box_slice: Annotated[str | None, typer.Option(
        help="2-D box on one slice, Z:X0,Y0,X1,Y1; propagated to neighbouring slices.")] = None,
    prompt_mask: Annotated[Path | None, typer.Option(
        help="Coarse label map as prompt (one code per structure); gives a label map.")] = None,
    label: Annotated[int, typer.Option(
        help="Value written inside a box-prompted mask (boxes without CODE=).")] = 1,
    modality: Annotated[str | None, typer.Option(
        help="ct or mr (default: the run's; ct for --sam-checkpoint).")] = None,
    window: Annotated[str | None, typer.Option(help="CT window LEVEL,WIDTH.")] = None,
    preset: Annotated[str | None, typer.Option(help=f"CT window preset: {PRESETS}.")] = None,
    channel: Annotated[int | None, typer.Option(help="Channel of a 4-D input.")] = None,
    figure: Annotated[Path | None, typer.Option(
        help="Also write a PNG of the slice with the largest mask: image, prompt box, mask "
        "outline.")] = None,
    series: Annotated[str | None, typer.Option(
        help="SeriesInstanceUID to read when the --image folder holds several DICOM series.")]
    = None,
) -> None:
    """Segment one structure from a box (or a label map from a coarse mask), in the input's
    geometry; an .npz case gets segs for each of its boxes."""
    from dataclasses import replace

    from medcl.io import ConfigError

    from .config import DBSAMConfig
    from .harness import load_run, model_from_checkpoint
    from .infer import segment_file
    from .npz import is_npz

    if figure is not None and not figure.name.lower().endswith(".png"):
        raise typer.BadParameter("the figure is a PNG: name it *.png", param_hint="--figure")
    if is_npz(image) and (box or box_slice or prompt_mask):
        raise typer.BadParameter("an .npz case is prompted by its own boxes: drop --box, "
                                 "--box-slice and --prompt-mask", param_hint="--image")
    if (model is None) == (sam_checkpoint is None):
        raise typer.BadParameter("give exactly one of --model RUN and --sam-checkpoint PATH",
                                 param_hint="--model")
    if is_npz(image):  # check the case before the (slow) model is built
        from medcl.io import refuse_overwrite

        from .npz import read_npz

        refuse_overwrite(out, [image])
        read_npz(image)
    if model is not None:
        cfg, net = load_run(model)
    else:
        cfg = DBSAMConfig(arch=arch, sam_checkpoint=str(sam_checkpoint))
        net = model_from_checkpoint(sam_checkpoint, arch, cfg.image_size)
    changes: dict = {"channel": channel}
    if modality is not None:
        changes["modality"] = modality
    if window is not None:
        changes["window"] = _window(window)
    if preset is not None:
        changes["preset"] = preset
    if preset is not None and (changes.get("modality", cfg.modality) != "ct"
                               or window is not None):
        raise ConfigError("--preset is a CT window: use it with CT volumes and without --window",
                          fix="drop --preset (MR intensities are clipped to percentiles)")
    try:
        cfg = replace(cfg, **changes)
    except ValueError as err:
        raise ConfigError(str(err), fix="see `medcl dbsam segment --help`") from err
    if is_npz(image):
        from .npz import segment_npz_file

        info = segment_npz_file(net, image, out, figure=figure)
        typer.echo(f"{out}: {info['boxes']} box(es) in {info['seconds']:.2f} s, "
                   f"{info['voxels']} voxels on {info['slices']} slice(s)")
        return
    info = segment_file(net, cfg, image, out, box=box, box_slice=box_slice,
                        prompt_mask=prompt_mask, label=label, progress=True, figure=figure,
                        series=series)
    typer.echo(f"{out}: {info['voxels']} voxels on {info['slices']} slice(s); "
               f"{info['embeddings']} slice embeddings computed, {info['cache_hits']} reused")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl dbsam train`.")],
    images: Annotated[Path, typer.Option(help="Folder of images (or challenge .npz cases).")],
    labels: Annotated[Path, typer.Option(
        help="Folder of label maps (for .npz cases: files holding gts, may be --images).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder (resumable).")],
    baseline: Annotated[str | None, typer.Option(
        help="'sam': also run vanilla SAM (vanilla LiteMedSAM for a litemedsam run) with the "
        "same weights and prompts.")] = None,
    channel: Annotated[int | None, typer.Option(
        help="Channel of 4-D inputs (default: the run's).")] = None,
    shard: Annotated[str | None, typer.Option(
        help="Score only share K of N of the cases (K/N, K from 0), e.g. one per SLURM array "
        "task; default: from torchrun/SLURM, else all.")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="No progress (default: a bar on a terminal, else a line per case).")]
    = False,
) -> None:
    """3-D Dice and normalised surface Dice per case and label, box prompts from the labels
    (.npz cases: their own boxes, the MedSAM-on-Laptop protocol and metrics, time per box).

    Rows are written to OUT/cases.csv as each case finishes; a rerun into the same --out scores
    only the cases not yet scored and retries the failed ones."""
    from medcl.io.units import failed_message, parse_shard

    from .harness import evaluate_run

    if baseline not in (None, "sam"):
        raise typer.BadParameter("only 'sam' is available", param_hint="--baseline")
    report = evaluate_run(model, images, labels, out, baseline=baseline == "sam",
                          channel=channel, progress=not quiet, shard=parse_shard(shard))
    typer.echo(f"report: {report}")
    failed = failed_message(Path(out) / "cases.csv", ["method", "case_id"], what="case")
    if failed:
        typer.echo(failed, err=True)
        raise typer.Exit(2)

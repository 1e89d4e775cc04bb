"""``medcl core skeleton``: HiCLR pretraining and evaluation on skeleton sequences (heavy
imports inside commands, so ``medcl --help`` stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="skeleton",
    help="Skeleton action sequences: HiCLR (AAAI 2023) and a plain MoCo baseline on ST-GCN.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = ("synth (stick figures: walk, wave, jump, squat, kick) or a folder of .npy/.npz "
             "sequences shaped (T, V, C) or (M, T, V, C).")
LAYOUT_HELP = "ntu25, coco17, or a text file of 0-based bones 'i,j' per line."
LABELS_HELP = "CSV with columns file,label (default: labels.csv in the --data folder)."
NAN_HELP = "Missing (NaN) joints: interpolate (linear in time) or refuse."


@app.callback()
def _group() -> None:
    """Pretrain and evaluate."""


@app.command()
def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "synth",
    method: Annotated[str, typer.Option(help="hiclr or moco (one-branch baseline).")] = "hiclr",
    layout: Annotated[str, typer.Option(help=LAYOUT_HELP)] = "ntu25",
    labels: Annotated[Path | None, typer.Option(help=LABELS_HELP)] = None,
    frames: Annotated[int | None, typer.Option(
        help="Frames per sequence after resampling (default: 50; 20 for synth).")] = None,
    nan: Annotated[str, typer.Option(help=NAN_HELP)] = "interpolate",
    depth: Annotated[str, typer.Option(help="stgcn (10 blocks) or tiny (4 blocks).")] = "stgcn",
    hidden: Annotated[int, typer.Option(help="ST-GCN width of the first blocks.")] = 16,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 128,
    lr: Annotated[float, typer.Option(help="SGD learning rate.")] = 0.1,
    queue_size: Annotated[int | None, typer.Option(
        help="MoCo queue length (default: 32768 capped below the training set size).")] = None,
    momentum: Annotated[float, typer.Option(help="Key-encoder momentum.")] = 0.999,
    temperature: Annotated[float, typer.Option(help="Softmax temperature.")] = 0.07,
    synth_per_class: Annotated[int, typer.Option(
        help="Sequences per action with --data synth.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Resume from OUT/checkpoints/last.pt.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No per-epoch lines.")] = False,
) -> None:
    """Pretrain an ST-GCN encoder with HiCLR or MoCo; probes on held-out sequences when
    labelled."""
    from .skeleton_train import SkeletonConfig, pretrain_run

    cfg = SkeletonConfig(method=method, data=data, labels=None if labels is None else str(labels),
                         layout=layout, frames=frames, nan=nan, depth=depth, hidden=hidden,
                         epochs=epochs, batch_size=batch_size, lr=lr, queue_size=queue_size,
                         momentum=momentum, temperature=temperature,
                         synth_per_class=synth_per_class, seed=seed)
    typer.echo(f"report: {pretrain_run(cfg, out, resume=resume, progress=not quiet)}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core skeleton pretrain`.")],
    data: Annotated[str, typer.Option(help=DATA_HELP)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
    labels: Annotated[Path | None, typer.Option(help=LABELS_HELP)] = None,
    label_fraction: Annotated[str, typer.Option(
        help="Comma-separated fractions of the training labels to use.")] = "0.01,0.1,1",
    finetune_epochs: Annotated[int, typer.Option(
        help="Fine-tuning epochs per fraction (0: frozen probes only).")] = 30,
    nan: Annotated[str, typer.Option(help=NAN_HELP)] = "interpolate",
    seed: Annotated[int, typer.Option(help="Seed of the split and label subsets.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Linear and kNN probes on frozen features and semi-supervised fine-tuning, per label
    fraction, on a stratified test split."""
    from .skeleton_train import EvalConfig, evaluate_run

    try:
        fractions = tuple(float(v) for v in label_fraction.split(",") if v.strip())
    except ValueError as err:
        raise typer.BadParameter(f"{label_fraction!r} is not a comma-separated list of numbers",
                                 param_hint="--label-fraction") from err
    ecfg = EvalConfig(model=str(model), data=data, labels=None if labels is None else str(labels),
                      label_fractions=fractions, finetune_epochs=finetune_epochs, nan=nan,
                      seed=seed)
    typer.echo(f"report: {evaluate_run(ecfg, out, progress=not quiet)}")

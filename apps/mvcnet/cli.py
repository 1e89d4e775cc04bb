"""``medcl mvcnet``: simulate, train, predict, benchmark (typer; heavy imports inside commands)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from medcl.io.cli import app_group, int_list

from .config import PROTOCOLS

PAPER = (
    'Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery '
    'Classification", Knowledge-Based Systems 2025, arXiv:2502.17482'
)

app = app_group(
    "mvcnet",
    "MVCNet: multi-view contrastive CNN+Transformer decoder of motor-imagery EEG.",
    paper=PAPER,
    workflow="simulate, train, predict, benchmark on EEG recordings (GDF, EDF, BDF, FIF, "
    "BrainVision, EEGLAB) and MOABB datasets",
)

ALL_MODELS = "mvcnet,mvcnet_cnn,csp_lda,eegnet,shallow,conformer,ifnet,ifnet_fb"


@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write recordings into.")],
    subjects: Annotated[int, typer.Option(help="Number of simulated subjects.")] = 3,
    fmt: Annotated[str, typer.Option("--format", help="edf, fif or brainvision.")] = "edf",
    trials: Annotated[int, typer.Option(help="Trials per class.")] = 40,
    snr: Annotated[float, typer.Option(help="Rhythm-to-noise amplitude ratio.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write simulated left/right-hand motor-imagery recordings (22-channel 10-20, 250 Hz)."""
    from .simulate import write_simulated

    paths = write_simulated(out, subjects=subjects, fmt=fmt, n_trials_per_class=trials,
                            snr=snr, seed=seed, overwrite=False)
    for p in paths:
        typer.echo(str(p))


@dataclass
class DataOptions:
    """What ``train`` / ``benchmark`` read: recordings or a MOABB dataset, as typed."""

    data: list[Path] | None = None
    moabb: str | None = None
    subjects: str | None = None
    sessions: str | None = None
    events: str | None = None
    labels: list[Path] | None = None
    channels: str | None = None

    def sources(self) -> dict:
        """The inputs as the run's ``config.yaml`` records them."""
        return {"data": [str(p) for p in self.data] if self.data else None, "moabb": self.moabb,
                "sessions": _names(self.sessions, "--sessions", all_word=True),
                "events": self.events or (None if self.moabb else "left=769,right=770")}


def _names(text: str | None, flag: str, *, all_word: bool = False) -> list[str] | None:
    """Comma-separated names (``None`` for no text, or for ``all`` when ``all_word``); an empty
    name is refused."""
    if not text or (all_word and text.strip().lower() == "all"):
        return None
    names = [part.strip() for part in text.split(",")]
    if not all(names):
        raise typer.BadParameter(f"empty name in {text!r}", param_hint=flag)
    return names


def _models(text: str) -> list[str]:
    """The ``--models`` names, each one of :data:`ALL_MODELS`."""
    chosen = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in ALL_MODELS.split(",")]
    if unknown or not chosen:
        raise typer.BadParameter(f"unknown model(s) {unknown}; choose from {ALL_MODELS}",
                                 param_hint="--models")
    return chosen


def _config(**options):
    """The run's :class:`~medcl.mvcnet.config.MVCNetConfig`: the paper's defaults, overridden by
    the CLI options (``seeds`` as typed, e.g. ``"1,2,3"``)."""
    from .config import TEST_ALIGNMENTS, MVCNetConfig

    if options["protocol"] not in PROTOCOLS:
        raise typer.BadParameter(f"choose {', '.join(PROTOCOLS)}, not {options['protocol']!r}",
                                 param_hint="--protocol")
    if options.get("test_alignment", "online") not in TEST_ALIGNMENTS:
        raise typer.BadParameter(f"choose {' or '.join(TEST_ALIGNMENTS)}, not "
                                 f"{options['test_alignment']!r}", param_hint="--test-alignment")
    try:
        return MVCNetConfig(**{**options, "seeds": int_list(options["seeds"], "--seeds")})
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


@dataclass
class RunOptions:
    """How ``train`` / ``benchmark`` run their units: progress, shard, worker processes."""

    quiet: bool = False
    shard: str | None = None
    workers: int = 1


def _train_like(inputs: DataOptions, cfg, models: str, out: Path,
                run: RunOptions | None = None) -> None:
    """``train`` and ``benchmark``: check the models, read the data, run the harness."""
    from medcl.io import ConfigError
    from medcl.io.units import parse_shard

    from .harness import load_data, train_run

    run = run or RunOptions()
    chosen = _models(models)
    try:
        shard = parse_shard(run.shard)
    except ConfigError as err:  # the shard's own message does not name the option
        raise typer.BadParameter(f"{err.problem} (ranks count from 0)",
                                 param_hint="--shard") from err
    pooled = load_data(cfg, files=inputs.data or None, moabb=inputs.moabb,
                       subjects=int_list(inputs.subjects, "--subjects") if inputs.subjects
                       else None, sessions=inputs.sessions,
                       events=inputs.events, labels=inputs.labels or None,
                       channels=_names(inputs.channels, "--channels"))
    report = train_run(cfg, pooled, chosen, out, sources=inputs.sources(),
                       progress=not run.quiet, shard=shard, workers=run.workers)
    if report is not None:
        typer.echo(f"report: {report}")


def _training_command(name: str, default_models: str, doc: str) -> None:
    """Register ``train`` or ``benchmark``: the same data and training options, only the
    default ``--models`` differs."""

    def command(
        out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
        data: Annotated[list[Path] | None, typer.Option(
            help="Recording(s): .gdf .edf .bdf .fif .vhdr .set (repeat the flag).")] = None,
        moabb: Annotated[str | None, typer.Option(
            help="MOABB dataset id, e.g. BNCI2014_001 (from the MNE data folder or "
            "downloaded); FakeDataset (random noise, offline) to try the MOABB path.")] = None,
        subjects: Annotated[str | None, typer.Option(help="MOABB subjects, e.g. 1,2.")] = None,
        sessions: Annotated[str | None, typer.Option(
            help="MOABB sessions to keep: names (0train or 0A,1B), NAME:N for the first N "
            "trials of a session (0:100), or all to pool (default: the dataset's data card, "
            "the authors' sessions for the protocol).")] = None,
        events: Annotated[str | None, typer.Option(
            help="Class=code mapping, e.g. left=769,right=770 or left=T1,right=T2.")] = None,
        labels: Annotated[list[Path] | None, typer.Option(
            help="Labels file of an evaluation recording (BCI IV 2a A0xE.mat), matched to "
            "--data by name (A01E.mat -> A01E.gdf).")] = None,
        channels: Annotated[str | None, typer.Option(
            help="EEG channels to keep, in this order, e.g. C3,Cz,C4 (default: all).")] = None,
        protocol: Annotated[str, typer.Option(
            help=f"{', '.join(PROTOCOLS[:-1])} or {PROTOCOLS[-1]}.")] = "co",
        epochs: Annotated[int, typer.Option(help="Training epochs (paper: 100).")] = 100,
        seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "1,2,3",
        models: Annotated[str, typer.Option(help=f"Comma-separated, from {ALL_MODELS}.")]
        = default_models,
        infer: Annotated[str, typer.Option(help="cnn (authors) or fused.")] = "cnn",
        l_freq: Annotated[float, typer.Option(help="Band-pass low edge (Hz).")] = 8.0,
        h_freq: Annotated[float, typer.Option(help="Band-pass high edge (Hz).")] = 32.0,
        resample: Annotated[float | None, typer.Option(help="Resample to this rate (Hz).")]
        = None,
        notch: Annotated[float | None, typer.Option(
            help="Notch filter at this frequency (Hz).")] = None,
        ems: Annotated[bool, typer.Option(help="Exponential moving standardisation.")] = False,
        tmin: Annotated[float | None, typer.Option(help="Window start after the cue (s).")]
        = None,
        tmax: Annotated[float | None, typer.Option(help="Window end after the cue (s).")]
        = None,
        alignment: Annotated[str, typer.Option(help="ea (Euclidean alignment) or none.")]
        = "ea",
        test_alignment: Annotated[str, typer.Option(
            help="online (incremental alignment in recording order) or authors (EA of the "
            "whole test set, then incremental, as the authors' CO/CV code).")] = "online",
        batch_size: Annotated[int | None, typer.Option(
            help="Batch size (default: the authors', 64; 32 under cv).")] = None,
        lr: Annotated[float, typer.Option(help="Adam learning rate (paper: 1e-3).")] = 1e-3,
        trans_hidden: Annotated[int | None, typer.Option(
            help="Transformer projector hidden width (default: 4x the feature size, as the "
            "authors).")] = None,
        precision: Annotated[str | None, typer.Option(
            help="MVCNet's training precision: 32-true or bf16-mixed (autocast to bfloat16, "
            "also on the CPU; default: bf16-mixed on a CUDA GPU, 32-true on the CPU).")]
        = None,
        quiet: Annotated[bool, typer.Option(
            "--quiet", help="No progress lines or bars (errors and the result only).")] = False,
        shard: Annotated[str | None, typer.Option(
            help="Run only units i with i mod N = K, e.g. 0/4 (0-based; default: from "
            "torchrun/SLURM, else all).")] = None,
        workers: Annotated[int, typer.Option(
            help="Processes running units at once (only with --models csp_lda).")] = 1,
    ) -> None:
        inputs = DataOptions(data=data, moabb=moabb, subjects=subjects, sessions=sessions,
                             events=events, labels=labels, channels=channels)
        cfg = _config(protocol=protocol, epochs=epochs, seeds=seeds, infer=infer,
                      l_freq=l_freq, h_freq=h_freq, resample=resample, notch=notch, ems=ems,
                      tmin=tmin, tmax=tmax, alignment=alignment, batch_size=batch_size, lr=lr,
                      trans_hidden=trans_hidden, test_alignment=test_alignment,
                      precision=precision)
        _train_like(inputs, cfg, models, out,
                    RunOptions(quiet=quiet, shard=shard, workers=workers))

    command.__doc__ = doc
    app.command(name)(command)


_training_command("train", "mvcnet,csp_lda",
                  "Train MVCNet (and baselines) under a named protocol; save a deployable model.")
_training_command("benchmark", ALL_MODELS,
                  "MVCNet against every baseline in one harness (same preprocessing, same "
                  "splits); the options of train, all models by default.")


@app.command()
def predict(
    model: Annotated[Path, typer.Option(help="Run folder written by `medcl mvcnet train`.")],
    data: Annotated[Path, typer.Option(help="Recording to decode.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="predictions.csv to write.")],
    events: Annotated[str | None, typer.Option(
        help="Cue mapping (default: the run's, plus unknown=783 for cues of unknown class).")]
    = None,
    labels: Annotated[Path | None, typer.Option(help="True labels file (A0xE.mat).")] = None,
    infer: Annotated[str | None, typer.Option(help="cnn or fused (default: the run's).")]
    = None,
) -> None:
    """One row per trial: onset, predicted class, class probabilities."""
    from .config import INFER_MODES
    from .infer import predict_file

    if infer is not None and infer not in INFER_MODES:
        raise typer.BadParameter(f"choose {' or '.join(INFER_MODES)}, not {infer!r}",
                                 param_hint="--infer")
    table = predict_file(model, data, out, events=events, labels=labels, infer=infer)
    for note in table.attrs.get("notes", []):
        typer.echo(f"{data}: {note}", err=True)
    typer.echo(f"{len(table)} trials -> {out}")

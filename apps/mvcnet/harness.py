"""One harness for MVCNet and its baselines: pool trials, split by protocol, align, train, score.

Every model sees the same preprocessed trials and the same splits; every table names its
protocol (CO, CV, LOSO or T->E), since numbers from different protocols are not comparable.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PROTOCOL_TITLES, MVCNetConfig

SPLITS_NAME = "splits.csv"
"""The evaluation table of a run: one row per protocol split, model and seed (``metrics.csv``
is kept for per-epoch training logs: the final model's is ``final/metrics.csv``)."""


@dataclass
class Pooled:
    """Trials of several subjects/sessions in one array (same channels, rate and length)."""

    X: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    sessions: np.ndarray
    ch_names: list[str]
    sfreq: float
    classes: list[str]
    notes: list[str]


def pool(trials: list) -> Pooled:
    """Stack :class:`medcl.io.eeg.EEGTrials` of several recordings; they must agree on channels,
    sampling rate, window length and classes (a clear error names the first that differs)."""
    from medcl.io import InputFileError

    if not trials:
        raise InputFileError("no recording to train on", fix="pass --data FILE... or --moabb ID")
    ref = trials[0]
    for t in trials[1:]:
        if t.ch_names != ref.ch_names:
            missing = [c for c in ref.ch_names if c not in t.ch_names]
            extra = [c for c in t.ch_names if c not in ref.ch_names]
            diff = "; ".join(f"{what} {', '.join(names)}" for what, names in
                             (("lacks", missing), ("has extra", extra)) if names)
            common = [c for c in ref.ch_names if c in t.ch_names]
            raise InputFileError(
                f"its channels differ from {ref.source}'s: "
                f"{diff or 'same channels in another order'}",
                path=t.source, fix=f"keep the channels all files share, in one order: --channels "
                f"{','.join(common)}")
        for what, a, b, fix in (
                ("sampling rate", t.sfreq, ref.sfreq, "resample all files alike: --resample HZ"),
                ("classes", t.classes, ref.classes, "use one --events mapping for all files"),
                ("window length", t.data.shape[2], ref.data.shape[2],
                 "resample all files alike: --resample HZ")):
            if a != b:
                raise InputFileError(f"its {what} ({a}) differs from {ref.source}'s ({b})",
                                     path=t.source, fix=fix)
    notes = [f"{t.source}: {n}" for t in trials for n in t.notes]
    return Pooled(
        X=np.concatenate([t.data for t in trials]).astype(np.float32),
        y=np.concatenate([t.labels for t in trials]),
        subjects=np.concatenate([[str(t.subject)] * len(t.labels) for t in trials]),
        sessions=np.concatenate([[str(t.session)] * len(t.labels) for t in trials]),
        ch_names=list(ref.ch_names), sfreq=float(ref.sfreq), classes=list(ref.classes),
        notes=notes)


def preprocess(cfg: MVCNetConfig, data: Pooled, train: np.ndarray, test: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Aligned (and optionally standardised) train and test trials of one split.

    Euclidean alignment per subject: training trials with their own reference (He & Wu 2020);
    test trials with the incremental online variant, in recording order, as a deployed decoder
    would see them.
    """
    from .preprocess import OnlineEA, euclidean_alignment, exponential_moving_standardize

    Xtr, Xte = data.X[train].copy(), data.X[test].copy()
    if cfg.ems:  # per trial; an empty set (no test trials) stays empty
        Xtr, Xte = (exponential_moving_standardize(X) if len(X) else X for X in (Xtr, Xte))
    if cfg.alignment == "ea":
        for subject in np.unique(data.subjects[train]):
            rows = data.subjects[train] == subject
            Xtr[rows] = euclidean_alignment(Xtr[rows])[0]
        for subject in np.unique(data.subjects[test]):
            rows = np.flatnonzero(data.subjects[test] == subject)
            online = OnlineEA(Xte.shape[1])
            Xte[rows] = online.transform(Xte[rows], update=True)
    return Xtr.astype(np.float32), Xte.astype(np.float32)


def protocol_splits(cfg: MVCNetConfig, data: Pooled) -> list:
    """The splits of ``cfg.protocol`` over the labelled trials (indices into those trials);
    a protocol the data cannot support is a :class:`medcl.io.ConfigError` saying why."""
    from medcl.io import ConfigError

    from .protocols import make_splits

    labelled = data.y >= 0
    try:
        return make_splits(cfg.protocol, y=data.y[labelled], subjects=data.subjects[labelled],
                           sessions=data.sessions[labelled])
    except ValueError as err:
        raise ConfigError(str(err), fix="choose a protocol these recordings support "
                          "(co and cv: any; loso: two subjects or more; t2e: two sessions)"
                          ) from err


def run_protocol(cfg: MVCNetConfig, data: Pooled, models: list[str], *,
                 run_dir: Path | None = None, progress: bool = False,
                 accelerator: str = "auto") -> tuple[pd.DataFrame, dict]:
    """Accuracy of every model on every split and seed of ``cfg.protocol``.

    Returns the per-run table (protocol, split, model, seed, accuracy, n_train, n_test) and, for
    the first seed's MVCNet, the pooled test labels / predictions and the learning curves.
    """
    from .baselines import fit_predict
    from .train import predict_proba, train_mvcnet

    splits = protocol_splits(cfg, data)
    idx = np.flatnonzero(data.y >= 0)
    rows, extras = [], {"y_true": [], "y_pred": [], "curves": []}
    for split in splits:
        train, test = idx[split.train], idx[split.test]
        Xtr, Xte = preprocess(cfg, data, train, test)
        ytr, yte = data.y[train], data.y[test]
        for seed in cfg.seeds:
            for name in models:
                if name == "mvcnet_cnn":  # ablation: the CNN branch alone, CE on raw trials
                    ablation = replace(cfg, views=[], lambda_cvc=0.0, lambda_cmc=0.0)
                    model, _ = train_mvcnet(ablation, Xtr, ytr, ch_names=data.ch_names,
                                            sfreq=data.sfreq, classes=data.classes, seed=seed,
                                            progress=progress, accelerator=accelerator)
                    scored = {name: predict_proba(model, Xte, "cnn")}
                elif name == "mvcnet":
                    model, history = train_mvcnet(
                        cfg, Xtr, ytr, ch_names=data.ch_names, sfreq=data.sfreq,
                        classes=data.classes, seed=seed, progress=progress,
                        accelerator=accelerator)
                    scored = {f"mvcnet ({mode})": predict_proba(model, Xte, mode)
                              for mode in ("cnn", "fused")}
                    if seed == cfg.seeds[0]:
                        extras["y_true"].append(yte)
                        extras["y_pred"].append(scored[f"mvcnet ({cfg.infer})"].argmax(1))
                        extras["curves"].append((split.name, history))
                else:
                    scored = {name: fit_predict(name, Xtr, ytr, Xte, sfreq=data.sfreq,
                                                n_classes=len(data.classes), epochs=cfg.epochs,
                                                batch_size=cfg.batch_size, lr=cfg.lr, seed=seed)}
                for label, proba in scored.items():
                    rows.append(dict(protocol=cfg.protocol, split=split.name, model=label,
                                     seed=seed, accuracy=float((proba.argmax(1) == yte).mean()),
                                     n_train=len(train), n_test=len(test)))
    return pd.DataFrame(rows), extras


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean over splits per seed, then mean and standard deviation over seeds, in percent."""
    per_seed = table.groupby(["model", "seed"], sort=False).accuracy.mean().reset_index()
    out = per_seed.groupby("model", sort=False).accuracy.agg(["mean", "std", "count"])
    out = out.rename(columns={"count": "seeds"}).reset_index()
    out[["mean", "std"]] = (out[["mean", "std"]] * 100).round(2)
    out["std"] = out["std"].fillna(0.0)
    return out


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str], title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(y_true, y_pred, labels=list(range(len(classes))),
                                            display_labels=classes, ax=ax, colorbar=False)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def curves_figure(curves: list[tuple[str, list[dict]]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(13, 3))
    for name, history in curves:
        for ax, key in zip(axes, ("loss", "ce", "cvc", "cmc"), strict=True):
            ax.plot([r["epoch"] for r in history], [r[key] for r in history], label=name)
            ax.set_title(key)
            ax.set_xlabel("epoch")
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def subject_session(path: Path) -> tuple[str, str]:
    """Subject and session from a file name: BCI Competition IV style ``A01T`` / ``B0103E`` gives
    (``A01``, ``T``); anything else gives (file stem, ``0``)."""
    import re

    stem = path.name.split(".")[0]
    m = re.fullmatch(r"([A-Z]\d{2})(\d{2})?([TE])", stem)
    if m:
        return m.group(1), (m.group(2) or "") + m.group(3)
    return stem, "0"


def match_labels(files: list[Path], labels: list[Path] | None) -> list[Path | None]:
    """The labels file of each recording: by file stem (``A01E.mat`` -> ``A01E.gdf``), else by
    position when there are as many labels files as recordings; otherwise a ConfigError."""
    from medcl.io import ConfigError

    if not labels:
        return [None] * len(files)
    stems = [Path(f).name.split(".")[0] for f in files]
    by_stem = {Path(lab).name.split(".")[0]: lab for lab in labels}
    if len(by_stem) == len(labels) and set(by_stem) <= set(stems):
        return [by_stem.get(stem) for stem in stems]
    if len(labels) == len(files):
        return list(labels)
    unmatched = [str(lab) for lab in labels if Path(lab).name.split(".")[0] not in stems]
    raise ConfigError(f"{len(labels)} --labels files for {len(files)} --data files, and "
                      f"{', '.join(unmatched) or 'some'} match no recording by name",
                      fix="name each labels file like its recording (A01E.mat for A01E.gdf), "
                      "or give one labels file per recording in the same order")


def load_data(cfg: MVCNetConfig, *, files: list[Path] | None = None, moabb: str | None = None,
              subjects: list[int] | None = None, sessions: list[str] | None = None,
              events: str | None = None, labels: list[Path] | None = None,
              channels: list[str] | None = None) -> Pooled:
    """Read recordings (any MNE format) or a MOABB dataset (its ``subjects`` and ``sessions``,
    default all) into one pool of trials, keeping ``channels`` (in that order) when given."""
    from medcl.io import ConfigError
    from medcl.io.eeg import load_moabb, read_trials

    window = dict(tmin=cfg.tmin, tmax=cfg.tmax)
    filt = dict(l_freq=cfg.l_freq, h_freq=cfg.h_freq, resample=cfg.resample, notch=cfg.notch,
                channels=channels)
    if moabb is not None:
        if files or labels:
            raise ConfigError(f"--moabb {moabb} is given together with --data/--labels files",
                              fix="train either on --data recordings or on a --moabb dataset")
        trials = load_moabb(moabb, subjects=subjects, sessions=sessions, events=events,
                            **window, **filt)
    else:
        if sessions is not None:
            raise ConfigError("--sessions selects sessions of a --moabb dataset",
                              fix="leave out --sessions with --data (pass the files of the "
                              "sessions you want)")
        if not files:
            raise ConfigError("no data given", fix="pass --data FILE... or --moabb DATASET_ID")
        trials = []
        for path, labels_file in zip(files, match_labels(files, labels), strict=True):
            subject, session = subject_session(Path(path))
            trials.append(read_trials(
                path, events or "left=769,right=770", tmin=0.0 if cfg.tmin is None else cfg.tmin,
                tmax=4.0 if cfg.tmax is None else cfg.tmax,
                labels_file=labels_file, subject=subject, session=session, **filt))
    return pool(trials)


def train_run(cfg: MVCNetConfig, data: Pooled, models: list[str], out: Path, *,
              sources: dict, progress: bool = True) -> Path:
    """``medcl mvcnet train``: protocol evaluation of every model, then a final MVCNet on all
    labelled trials saved as the run's ``model.pt`` (what ``predict`` uses).

    Everything is checked and trained before the run folder is written, so a bad input or a
    failed training leaves no half-written run."""
    import matplotlib.pyplot as plt

    from medcl.io import ConfigError, InputFileError, RunFolder, atomic

    from .train import check_model_size, train_mvcnet
    from .views import ViewPipeline

    labelled = data.y >= 0
    counts = np.bincount(data.y[labelled], minlength=len(data.classes))
    if labelled.sum() < 2 * len(data.classes) or (counts < 2).any():
        per_class = dict(zip(data.classes, counts.tolist(), strict=True))
        where = sources.get("data") or [f"moabb:{sources.get('moabb')}"]
        raise InputFileError(f"too few labelled trials per class ({per_class})",
                             path=", ".join(map(str, where)),
                             fix="give recordings with at least two trials of every class")
    protocol_splits(cfg, data)  # fail before anything is trained or written
    check_model_size(cfg, len(data.ch_names), int(data.X.shape[2]))
    try:  # the views accept these channels and class names
        ViewPipeline(list(cfg.views), data.ch_names, data.sfreq, data.classes)
    except ValueError as err:
        raise ConfigError(str(err), fix="name the channels 10-20 style (C3, C4, ...)") from err
    table, extras = run_protocol(cfg, data, models, run_dir=None, progress=progress)
    final, history = train_mvcnet(cfg, _align_all(cfg, data), data.y[labelled],
                                  ch_names=data.ch_names, sfreq=data.sfreq,
                                  classes=data.classes, seed=cfg.seeds[0], progress=progress)

    folder = RunFolder.create(out)
    folder.write_config(cfg, seed=cfg.seeds[0], extra={
        **sources, "models": models, "ch_names": data.ch_names, "sfreq": data.sfreq,
        "classes": data.classes, "n_times": int(data.X.shape[2]), "n_trials": int(len(data.y)),
        "subjects": sorted(set(data.subjects.tolist())),
        "sessions_used": sorted(set(data.sessions.tolist()))})
    atomic.write_csv(folder.root / SPLITS_NAME, table)
    summary = summarise(table)
    summary_md = folder.write_table("results", summary, floatfmt=".2f")
    atomic.write_text(folder.root / "results.md", f"Protocol: {PROTOCOL_TITLES[cfg.protocol]}"
                      f"\n\n{summary_md.rstrip()}\n")
    atomic.write_csv(folder.root / "final" / "metrics.csv", pd.DataFrame(history))
    if extras["y_true"]:
        fig = confusion_figure(np.concatenate(extras["y_true"]),
                               np.concatenate(extras["y_pred"]), data.classes,
                               f"MVCNet ({cfg.infer}), {cfg.protocol.upper()}, seed "
                               f"{cfg.seeds[0]}")
        folder.save_figure("confusion", fig)
        plt.close(fig)
        fig = curves_figure(extras["curves"])
        folder.save_figure("learning_curves", fig)
        plt.close(fig)
    folder.save_model(final.state_dict())
    notes = "".join(f"- {n}\n" for n in data.notes[:20]) or "- none\n"
    report = (
        f"# MVCNet run\n\nProtocol: **{PROTOCOL_TITLES[cfg.protocol]}**. "
        f"{len(data.y)} trials, {len(data.ch_names)} channels at {data.sfreq:g} Hz, "
        f"{data.X.shape[2]} samples per trial, classes {', '.join(data.classes)}, subjects "
        f"{', '.join(sorted(set(data.subjects.tolist())))}, sessions "
        f"{', '.join(sorted(set(data.sessions.tolist())))}. Band-pass {cfg.l_freq}-{cfg.h_freq}"
        f" Hz, alignment {cfg.alignment}{', exponential moving standardisation' if cfg.ems else ''}"
        f"; {cfg.epochs} epochs, last-epoch accuracy (%), mean "
        f"and standard deviation over seeds {cfg.seeds} (each seed: mean over splits).\n\n"
        f"{summary_md}\n\n`mvcnet (cnn)` classifies the CNN branch's features (the authors' "
        "test-time choice); `mvcnet (fused)` the mean of both branches' features.\n\n"
        + ("![confusion matrix](confusion.png)\n\n![learning curves](learning_curves.png)\n\n"
           if extras["y_true"] else "") +
        f"Results: `results.csv` / `results.md`. Per split and seed: `{SPLITS_NAME}`. Deployable "
        f"model (all labelled trials, seed {cfg.seeds[0]}): `model.pt`, its training log "
        f"`final/metrics.csv`.\n\nInput notes:\n{notes}")
    folder.write_report(report)
    return folder.report_path


def _align_all(cfg: MVCNetConfig, data: Pooled) -> np.ndarray:
    labelled = np.flatnonzero(data.y >= 0)
    Xtr, _ = preprocess(cfg, data, labelled, labelled[:0])
    return Xtr

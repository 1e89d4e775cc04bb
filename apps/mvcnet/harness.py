"""One harness for MVCNet and its baselines: pool trials, split by protocol, align, train, score.

Every model sees the same preprocessed trials and the same splits; every table names its
protocol (CO, CV, LOSO or T->E), since numbers from different protocols are not comparable.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .config import PROTOCOL_TITLES, TEST_ALIGNMENTS, MVCNetConfig

DEFAULT_PRECISION = "the default (bf16-mixed on CUDA, 32-true on the CPU)"

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
    selection: dict | None = None
    """Which sessions were kept and why: ``{"sessions": text, "from": origin}`` (see
    :func:`load_data`); ``None`` for pools made by hand."""


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

    Euclidean alignment per subject (He & Wu 2020), with the authors' centred covariance
    (``np.cov``, see :func:`medcl.mvcnet.preprocess.trial_covariances`): training trials with
    their own reference. Test trials per subject, as ``cfg.test_alignment`` says:

    ``"online"`` (default)
        Incremental online EA in recording order (:class:`~medcl.mvcnet.preprocess.OnlineEA`):
        trial ``k`` is aligned with the mean covariance of test trials ``1..k``, as a deployed
        decoder would see them. This is what the authors do under LOSO.
    ``"authors"``
        What the authors' CO and CV scripts do (``MVCNet_CO.py`` via ``utils/data_utils.py``
        and ``utils/utils.py``; ``MVCNet_CV.py``): EA of the whole test set with its own
        reference (which uses every test trial, so it is not an online decoder), then the
        incremental alignment on top. Under CO the incremental pass runs in **class-sorted**
        order (all trials of class 0, then class 1, ... as their split concatenates them);
        under CV in the fold's order, which is recording order (their test fold is a contiguous
        ``KFold`` block; the issue's "class-sorted for CV" is not what their code does); under
        T->E in recording order too. Under LOSO the authors align the test subject online only,
        so ``"authors"`` is the same as ``"online"`` there.

    Rows come back in the order of ``test`` whatever order the alignment ran in.
    """
    from .preprocess import OnlineEA, euclidean_alignment, exponential_moving_standardize

    Xtr, Xte = data.X[train].copy(), data.X[test].copy()
    if cfg.ems:  # per trial; an empty set (no test trials) stays empty
        Xtr, Xte = (exponential_moving_standardize(X) if len(X) else X for X in (Xtr, Xte))
    if cfg.alignment == "ea":
        for subject in np.unique(data.subjects[train]):
            rows = data.subjects[train] == subject
            Xtr[rows] = euclidean_alignment(Xtr[rows])[0]
        authors = cfg.test_alignment == "authors" and cfg.protocol != "loso"
        for subject in np.unique(data.subjects[test]):
            rows = np.flatnonzero(data.subjects[test] == subject)
            if authors:
                Xte[rows] = euclidean_alignment(Xte[rows])[0]
                if cfg.protocol == "co":  # the authors' class-sorted test set
                    rows = rows[np.argsort(data.y[test][rows], kind="stable")]
            Xte[rows] = OnlineEA(Xte.shape[1]).transform(Xte[rows], update=True)
    return Xtr.astype(np.float32), Xte.astype(np.float32)


def alignment_label(cfg: MVCNetConfig) -> str:
    """The words a results table and report use for the test-time alignment of ``cfg``."""
    if cfg.alignment != "ea":
        return "none (no Euclidean alignment)"
    note = " (the same as online under LOSO)" if (
        cfg.test_alignment == "authors" and cfg.protocol == "loso") else ""
    return f"{cfg.test_alignment}: {TEST_ALIGNMENTS[cfg.test_alignment]}{note}"


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


UNIT_KEY = ("protocol", "split", "seed", "trained")
"""What identifies a unit of a run's ``splits.csv``: the split, the seed and the model trained
(``trained``; ``mvcnet`` gives two rows, models ``mvcnet (cnn)`` and ``mvcnet (fused)``)."""

SPLIT_COLUMNS = ("model", "accuracy", "n_train", "n_test")
"""The result columns of a unit's rows in ``splits.csv`` (after :data:`UNIT_KEY`)."""

UNITS_DIR = "units"
"""Where a run keeps what its units leave besides rows: the first seed's MVCNet test labels,
predictions and learning curve, one JSON file per unit (the figures are rebuilt from them)."""

SKLEARN_MODELS = ("csp_lda",)
"""Models whose units may run in ``--workers`` processes (small scikit-learn pipelines); the
networks train one at a time and use every core already."""


def protocol_units(cfg: MVCNetConfig, splits: list, models: list[str]) -> list[tuple[dict, int]]:
    """The units of a run, split x seed x model in that order: ``(key, split index)``."""
    return [({"protocol": cfg.protocol, "split": split.name, "seed": seed, "trained": name}, i)
            for i, split in enumerate(splits) for seed in cfg.seeds for name in models]


class UnitWork:
    """Train and score one unit (split, seed, model): ``work(key, split_index) -> rows``.

    The preprocessed trials of a split are shared by its units: computed on the first unit of
    the split that runs here and kept until a unit of another split comes (so a resumed run only
    preprocesses the splits it still needs). The first seed's MVCNet keeps its test labels,
    predictions and learning curve: in ``extras_dir`` (one JSON file per unit, written
    atomically) when given, else in :attr:`extras`. Picklable (``--workers``): the cache is not
    carried.
    """

    def __init__(self, cfg: MVCNetConfig, data: Pooled, splits: list, *,
                 extras_dir: Path | None = None, progress: bool = False,
                 accelerator: str = "auto") -> None:
        self.cfg, self.data, self.splits = cfg, data, splits
        self.extras_dir, self.progress, self.accelerator = extras_dir, progress, accelerator
        self.extras: list[dict] = []
        self._cache: tuple[int, tuple] | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_cache": None}

    def split_data(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(train, test, Xtr, Xte)`` of split ``index``: trial indices and aligned trials."""
        if self._cache is None or self._cache[0] != index:
            self._cache = None  # free the previous split's trials first
            labelled = np.flatnonzero(self.data.y >= 0)
            split = self.splits[index]
            train, test = labelled[split.train], labelled[split.test]
            self._cache = (index, (train, test, *preprocess(self.cfg, self.data, train, test)))
        return self._cache[1]

    def __call__(self, key: dict, index: int) -> list[dict]:
        from .baselines import fit_predict
        from .train import predict_proba, train_mvcnet

        cfg, data = self.cfg, self.data
        train, test, Xtr, Xte = self.split_data(index)
        ytr, yte = data.y[train], data.y[test]
        name, seed = key["trained"], int(key["seed"])
        fit = dict(ch_names=data.ch_names, sfreq=data.sfreq, classes=data.classes, seed=seed,
                   progress=self.progress, accelerator=self.accelerator)
        if name == "mvcnet_cnn":  # ablation: the CNN branch alone, CE on raw trials
            ablation = replace(cfg, views=[], lambda_cvc=0.0, lambda_cmc=0.0)
            model, _ = train_mvcnet(ablation, Xtr, ytr, **fit)
            scored = {name: predict_proba(model, Xte, "cnn")}
        elif name == "mvcnet":
            model, history = train_mvcnet(cfg, Xtr, ytr, **fit)
            scored = {f"mvcnet ({mode})": predict_proba(model, Xte, mode)
                      for mode in ("cnn", "fused")}
            if seed == cfg.seeds[0]:
                self._keep(key, yte, scored[f"mvcnet ({cfg.infer})"].argmax(1), history)
        else:
            scored = {name: fit_predict(name, Xtr, ytr, Xte, sfreq=data.sfreq,
                                        n_classes=len(data.classes), epochs=cfg.epochs,
                                        batch_size=cfg.batch_size, lr=cfg.lr, seed=seed)}
        return [dict(model=label, accuracy=float((proba.argmax(1) == yte).mean()),
                     n_train=len(train), n_test=len(test)) for label, proba in scored.items()]

    def _keep(self, key: dict, y_true: np.ndarray, y_pred: np.ndarray, history: list) -> None:
        import json

        from medcl.io import atomic

        record = {"key": {k: str(v) for k, v in key.items()}, "y_true": y_true.tolist(),
                  "y_pred": y_pred.tolist(), "history": atomic.to_plain(history)}
        if self.extras_dir is None:
            self.extras.append(record)
        else:
            atomic.write_text(extras_path(self.extras_dir, key), json.dumps(record) + "\n")


def extras_path(folder: Path, key: dict) -> Path:
    """The JSON file of a unit's extras in ``folder`` (a name made of its key)."""
    import re

    name = "-".join(str(key[k]) for k in UNIT_KEY)
    return Path(folder) / (re.sub(r"[^A-Za-z0-9._]+", "_", name) + ".json")


def gather_extras(records: list[dict]) -> dict:
    """The first seed's MVCNet extras of several units in the form the figures take:
    ``y_true`` / ``y_pred`` (lists of arrays) and ``curves`` ((split, history) pairs)."""
    return {"y_true": [np.asarray(r["y_true"], dtype=int) for r in records],
            "y_pred": [np.asarray(r["y_pred"], dtype=int) for r in records],
            "curves": [(r["key"]["split"], r["history"]) for r in records]}


def run_protocol(cfg: MVCNetConfig, data: Pooled, models: list[str], *, progress: bool = False,
                 accelerator: str = "auto") -> tuple[pd.DataFrame, dict]:
    """Accuracy of every model on every split and seed of ``cfg.protocol``, in memory (no run
    folder: :func:`train_run` runs the same units resumably).

    Returns the per-run table (protocol, split, model, seed, accuracy, n_train, n_test,
    test_alignment) and, for the first seed's MVCNet, the pooled test labels / predictions and
    the learning curves.
    """
    splits = protocol_splits(cfg, data)
    work = UnitWork(cfg, data, splits, progress=progress, accelerator=accelerator)
    aligned = cfg.test_alignment if cfg.alignment == "ea" else "none"
    rows = [{"protocol": key["protocol"], "split": key["split"], "model": row["model"],
             "seed": key["seed"], **{c: row[c] for c in SPLIT_COLUMNS[1:]},
             "test_alignment": aligned}
            for key, index in protocol_units(cfg, splits, models) for row in work(key, index)]
    return pd.DataFrame(rows), gather_extras(work.extras)


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


ALL_SESSIONS = "all"
"""The ``--sessions`` word that pools every session of a MOABB dataset."""


def parse_sessions(text: str | None, flag: str = "--sessions"
                   ) -> list[tuple[str, int | None]] | None:
    """A session selection as typed (``--sessions``) or written in a data card
    (``protocol.sessions.<protocol>``): ``all``, or comma-separated ``NAME`` / ``NAME:N`` (MOABB
    session ``NAME``, only its first ``N`` trials of each subject, in recording order).

    Returns ``None`` for all sessions, else ``[(name, N or None), ...]``; a malformed selection
    is a :class:`medcl.io.ConfigError` naming ``flag``.
    """
    import re

    from medcl.io import ConfigError

    if text is None or str(text).strip().lower() == ALL_SESSIONS:
        return None
    chosen = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*([^\s:,]+)(?::(\d+))?\s*", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < 1):
            raise ConfigError(f"{flag} {text!r}: {part.strip()!r} is not a session name or "
                              "NAME:N (N >= 1 first trials)",
                              fix=f"give e.g. {flag} 0train, {flag} 0:100 or {flag} all")
        chosen.append((m.group(1), int(m.group(2)) if m.group(2) else None))
    return chosen


def card_sessions(moabb: str, protocol: str) -> tuple[str, str]:
    """The default session selection of MOABB dataset ``moabb`` under ``protocol``: the
    ``protocol.sessions`` entry of its data card (the authors' choice), else ``all``.

    Returns ``(selection, origin)``, ``origin`` saying where the selection comes from. The card
    is the one whose file stem equals the dataset id without ``_``/``-`` and case (e.g.
    ``bnci2014_001.yaml`` for ``BNCI2014_001``), in :func:`medcl.io.cards.cards_dir`.
    """
    from medcl.io.cards import cards_dir, load_card

    def key(text: str) -> str:
        return "".join(ch for ch in str(text).lower() if ch.isalnum())

    try:
        files = sorted(p for p in cards_dir().glob("*.y*ml") if key(p.stem) == key(moabb))
    except OSError:
        files = []
    if not files:
        return ALL_SESSIONS, f"default: no data card for {moabb}, so all sessions"
    card = load_card(files[0])
    chosen = (card.protocol.get("sessions") or {}).get(protocol)
    if chosen is None:
        return ALL_SESSIONS, (f"default: data card {card.id} names no sessions for "
                              f"{protocol.upper()}, so all")
    return str(chosen), (f"default: data card {card.id}, the authors' sessions for "
                         f"{protocol.upper()}; --sessions all pools every session")


def _first_trials(trials, n: int):
    """The first ``n`` trials of one subject's session (recording order)."""
    from dataclasses import replace as _replace

    if len(trials.labels) <= n:
        return trials
    return _replace(trials, data=trials.data[:n], labels=trials.labels[:n],
                    onsets=np.asarray(trials.onsets)[:n],
                    notes=[*trials.notes, f"first {n} of {len(trials.labels)} trials kept "
                           f"(session {trials.session})"])


def load_data(cfg: MVCNetConfig, *, files: list[Path] | None = None, moabb: str | None = None,
              subjects: list[int] | None = None, sessions: str | list[str] | None = None,
              events: str | None = None, labels: list[Path] | None = None,
              channels: list[str] | None = None) -> Pooled:
    """Read recordings (any MNE format) or a MOABB dataset (its ``subjects``, default all) into
    one pool of trials, keeping ``channels`` (in that order) when given.

    ``sessions`` (MOABB only) is a selection of :func:`parse_sessions` (a list of names is
    joined with commas); ``None`` takes the dataset's data card choice for ``cfg.protocol``
    (:func:`card_sessions`: the authors' sessions, e.g. ``0train`` for BNCI2014_001 under CO,
    CV and LOSO), ``"all"`` pools every session. ``Pooled.selection`` records what was kept
    and why.
    """
    from medcl.io import ConfigError
    from medcl.io.eeg import load_moabb, read_trials

    window = dict(tmin=cfg.tmin, tmax=cfg.tmax)
    filt = dict(l_freq=cfg.l_freq, h_freq=cfg.h_freq, resample=cfg.resample, notch=cfg.notch,
                channels=channels)
    if moabb is not None:
        if files or labels:
            raise ConfigError(f"--moabb {moabb} is given together with --data/--labels files",
                              fix="train either on --data recordings or on a --moabb dataset")
        if sessions is None:
            text, origin = card_sessions(moabb, cfg.protocol)
        else:
            text = sessions if isinstance(sessions, str) else ",".join(map(str, sessions))
            origin = "--sessions"
        chosen = parse_sessions(text, "--sessions" if origin == "--sessions" else
                                f"protocol.sessions.{cfg.protocol} ({origin})")
        trials = load_moabb(moabb, subjects=subjects,
                            sessions=None if chosen is None else [n for n, _ in chosen],
                            events=events, **window, **filt)
        limits = {name: n for name, n in chosen or [] if n is not None}
        trials = [_first_trials(t, limits[str(t.session)]) if str(t.session) in limits else t
                  for t in trials]
        selection = {"sessions": text, "from": origin}
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
        selection = {"sessions": ALL_SESSIONS, "from": "the --data files as given"}
    pooled = pool(trials)
    pooled.selection = selection
    return pooled


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def sessions_line(data: Pooled) -> str:
    """One line saying which sessions a run used and why (printed, and in the report)."""
    used = ", ".join(sorted(set(data.sessions.tolist())))
    sel = data.selection or {"sessions": ALL_SESSIONS, "from": "as given"}
    return f"sessions used: {used} (selection {sel['sessions']!r}, {sel['from']})"


def run_signature(cfg: MVCNetConfig, data: Pooled, models: list[str], sources: dict) -> dict:
    """What a run's ``splits.csv`` is computed from: the resolved config, the models and the
    data's identity (file names, not their folders, so a moved data folder resumes; channels,
    rate, classes, subjects, sessions, trial count and a digest of the labels)."""
    import hashlib

    from medcl.io import atomic

    names = [Path(p).name for p in sources.get("data") or []]
    return {"config": atomic.to_plain(cfg), "models": list(models), "data": {
        "files": names, "moabb": sources.get("moabb"), "sessions": sources.get("sessions"),
        "events": sources.get("events"), "ch_names": data.ch_names, "sfreq": data.sfreq,
        "classes": data.classes, "subjects": sorted(set(data.subjects.tolist())),
        "sessions_used": sorted(set(data.sessions.tolist())),
        "session_selection": data.selection, "shape": list(data.X.shape),
        "labels_sha256": hashlib.sha256(np.ascontiguousarray(data.y).tobytes()).hexdigest()}}


def _check_inputs(cfg: MVCNetConfig, data: Pooled, models: list[str], sources: dict,
                  workers: int) -> list:
    """Everything that can be refused before a run folder is written; returns the splits."""
    from medcl.io import ConfigError, InputFileError

    from .train import check_model_size
    from .views import ViewPipeline

    labelled = data.y >= 0
    counts = np.bincount(data.y[labelled], minlength=len(data.classes))
    if labelled.sum() < 2 * len(data.classes) or (counts < 2).any():
        per_class = dict(zip(data.classes, counts.tolist(), strict=True))
        where = sources.get("data") or [f"moabb:{sources.get('moabb')}"]
        raise InputFileError(f"too few labelled trials per class ({per_class})",
                             path=", ".join(map(str, where)),
                             fix="give recordings with at least two trials of every class")
    splits = protocol_splits(cfg, data)
    check_model_size(cfg, len(data.ch_names), int(data.X.shape[2]), data.sfreq)
    try:  # the views accept these channels and class names
        ViewPipeline(list(cfg.views), data.ch_names, data.sfreq, data.classes)
    except ValueError as err:
        raise ConfigError(str(err), fix="name the channels 10-20 style (C3, C4, ...)") from err
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need 1 or more")
    networks = [m for m in models if m not in SKLEARN_MODELS]
    if workers > 1 and networks:
        raise ConfigError(
            f"--workers runs the scikit-learn baselines ({', '.join(SKLEARN_MODELS)}) in parallel "
            f"processes; {', '.join(networks)} train one at a time, each on every core",
            fix="leave out --workers, or give --models csp_lda with --workers in its own --out")
    return splits


def _unit_ids(units: list[tuple[dict, int]]) -> list[tuple[str, ...]]:
    return [tuple(str(k[c]) for c in UNIT_KEY) for k, _ in units]


def _done(table: pd.DataFrame, status: str = "ok") -> set[tuple[str, ...]]:
    rows = table[table["status"] == status] if len(table) else table
    return {tuple(str(r[c]) for c in UNIT_KEY) for r in rows.to_dict("records")}


def write_results(folder, cfg: MVCNetConfig, table: pd.DataFrame,
                  units: list[tuple[dict, int]]) -> str:
    """``results.csv`` / ``results.md`` from the rows of ``splits.csv`` present now (the
    ``on_table`` of the units); returns the summary as Markdown. A partial table says how many
    units are done; failed units are named."""
    from medcl.io import atomic

    ok = table[table["status"] == "ok"] if len(table) else table
    summary = summarise(ok) if len(ok) else pd.DataFrame(columns=["model", "mean", "std",
                                                                  "seeds"])
    summary["test_alignment"] = cfg.test_alignment if cfg.alignment == "ea" else "none"
    summary_md = folder.write_table("results", summary, floatfmt=".2f")
    ids = _unit_ids(units)
    done, failed = _done(table), _done(table, "failed") - _done(table)
    lines = [f"Protocol: {PROTOCOL_TITLES[cfg.protocol]}", "",
             f"Test-time alignment: {alignment_label(cfg)}", "", summary_md.rstrip()]
    if len(done & set(ids)) < len(ids):
        lines += ["", f"{len(done & set(ids))} of {len(ids)} units done (partial results)."]
    if failed:
        lines += ["", "Failed units (rerun the command to retry them): "
                  + "; ".join(" ".join(u[1:]) for u in ids if u in failed) + "."]
    atomic.write_text(folder.root / "results.md", "\n".join(lines) + "\n")
    return summary_md


def train_run(cfg: MVCNetConfig, data: Pooled, models: list[str], out: Path, *,
              sources: dict, progress: bool = True, shard=None, workers: int = 1
              ) -> Path | None:
    """``medcl mvcnet train`` / ``benchmark``: every model on every split and seed of the
    protocol as units of :func:`medcl.io.units.run_units`, then a final MVCNet on all labelled
    trials saved as the run's ``model.pt`` (what ``predict`` uses).

    Inputs are checked before anything is written (a bad input leaves no run folder). Each unit
    writes its rows to ``splits.csv`` as it ends and ``results.csv`` / ``results.md`` are
    rebuilt, so the folder always shows what is done; rerunning the same command resumes (the
    units done are skipped, failed ones retried; a folder of other inputs is refused). The final
    model checkpoints every epoch in ``final/`` and resumes from there.

    Parameters
    ----------
    progress : bool
        Progress lines (or bars on a terminal) per unit and per epoch; ``False`` for none.
    shard : medcl.io.units.Shard, optional
        This process's share of the units (default: from torchrun/SLURM, else all). The final
        model and report are made by the process that finds every unit done.
    workers : int
        Processes running units at once; only for :data:`SKLEARN_MODELS`.

    Returns
    -------
    pathlib.Path or None
        ``report.md``; ``None`` when units of other shards are still missing.

    Raises
    ------
    medcl.io.MedclError
        After the report is written, when units failed (naming them); a rerun retries them.
    """
    import shutil

    import matplotlib.pyplot as plt

    from medcl.io import MedclError, RunFolder
    from medcl.io.units import RunLock, Shard, check_signature, run_units

    from .train import train_mvcnet

    splits = _check_inputs(cfg, data, models, sources, workers)
    units = protocol_units(cfg, splits, models)
    signature = run_signature(cfg, data, models, sources)
    shard = Shard.from_environment() if shard is None else shard
    folder = RunFolder.create(out)
    table_path = folder.root / SPLITS_NAME
    with RunLock(folder.root / f".run.{shard.label}.lock"):
        check_signature(table_path, signature)  # before config.yaml is rewritten
        folder.write_config(cfg, seed=cfg.seeds[0], extra={
            **sources, "models": models, "ch_names": data.ch_names, "sfreq": data.sfreq,
            "classes": data.classes, "n_times": int(data.X.shape[2]),
            "n_trials": int(len(data.y)), "subjects": sorted(set(data.subjects.tolist())),
            "sessions_used": sorted(set(data.sessions.tolist())),
            "session_selection": data.selection, "test_alignment": alignment_label(cfg)})
        if progress:
            print(sessions_line(data), file=sys.stderr, flush=True)
        work = UnitWork(cfg, data, splits, extras_dir=folder.root / UNITS_DIR, progress=progress)
        result = run_units(
            units, work, table_path, columns=[*UNIT_KEY, *SPLIT_COLUMNS], signature=signature,
            progress="auto" if progress else "quiet", shard=shard, workers=workers,
            on_table=lambda table: write_results(folder, cfg, table, units))
        table = result.table
        summary_md = write_results(folder, cfg, table, units)
        ids = _unit_ids(units)
        present = _done(table) | _done(table, "failed")
        if not set(ids) <= present:
            if progress:
                print(f"{len(set(ids) - present)} of {len(ids)} units are left to other shards; "
                      "the one that finds them all done writes the final model and report",
                      file=sys.stderr, flush=True)
            return None

        final_dir = folder.root / "final"
        if not (folder.model_path.exists() and (final_dir / "metrics.csv").exists()):
            if progress:
                print(f"final model: MVCNet on all {int((data.y >= 0).sum())} labelled trials, "
                      f"seed {cfg.seeds[0]} (checkpoints in final/)", file=sys.stderr, flush=True)
            final, _ = train_mvcnet(cfg, _align_all(cfg, data), data.y[data.y >= 0],
                                    ch_names=data.ch_names, sfreq=data.sfreq,
                                    classes=data.classes, seed=cfg.seeds[0], progress=progress,
                                    run_dir=final_dir, resume=True)
            folder.save_model(final.state_dict())
            shutil.rmtree(final_dir / "checkpoints", ignore_errors=True)  # model.pt is kept

        ok = _done(table)
        records = [json.loads(extras_path(folder.root / UNITS_DIR, k).read_text())
                   for k, _ in units if k["trained"] == "mvcnet" and k["seed"] == cfg.seeds[0]
                   and tuple(str(k[c]) for c in UNIT_KEY) in ok
                   and extras_path(folder.root / UNITS_DIR, k).exists()]
        extras = gather_extras(records)
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
        folder.write_report(_report(cfg, data, summary_md, bool(extras["y_true"])))
    failed = [" ".join(u[1:]) for u in ids if u in _done(table, "failed") - ok]
    if failed:
        raise MedclError(f"{len(failed)} of {len(ids)} units failed ({'; '.join(failed)}); the "
                         f"others are in {SPLITS_NAME}, with the reasons", path=folder.root,
                         fix="rerun the same command to retry only the failed units")
    return folder.report_path


def _report(cfg: MVCNetConfig, data: Pooled, summary_md: str, figures: bool) -> str:
    notes = "".join(f"- {n}\n" for n in data.notes[:20]) or "- none\n"
    return (
        f"# MVCNet run\n\nProtocol: **{PROTOCOL_TITLES[cfg.protocol]}**. "
        f"{len(data.y)} trials, {len(data.ch_names)} channels at {data.sfreq:g} Hz, "
        f"{data.X.shape[2]} samples per trial, classes {', '.join(data.classes)}, subjects "
        f"{', '.join(sorted(set(data.subjects.tolist())))}, sessions "
        f"{', '.join(sorted(set(data.sessions.tolist())))}.\n\n{_upper_first(sessions_line(data))}."
        f"\n\nTest-time alignment: **{alignment_label(cfg)}**.\n\nBand-pass {cfg.l_freq}-"
        f"{cfg.h_freq} Hz, alignment {cfg.alignment} (centred covariance, as the authors)"
        f"{', exponential moving standardisation' if cfg.ems else ''}; batch size "
        f"{cfg.batch_size}; MVCNet precision {cfg.precision or DEFAULT_PRECISION}; "
        f"{cfg.epochs} epochs, last-epoch accuracy (%), mean "
        f"and standard deviation over seeds {cfg.seeds} (each seed: mean over splits).\n\n"
        f"{summary_md}\n\n`mvcnet (cnn)` classifies the CNN branch's features (the authors' "
        "test-time choice); `mvcnet (fused)` a second head trained on the mean of both "
        "branches' features (ours; the network's gradients are the authors' loss's).\n\n"
        + ("![confusion matrix](confusion.png)\n\n![learning curves](learning_curves.png)\n\n"
           if figures else "") +
        f"Results: `results.csv` / `results.md`. Per split and seed: `{SPLITS_NAME}` (one row "
        "per unit and model, with its status). Deployable "
        f"model (all labelled trials, seed {cfg.seeds[0]}): `model.pt`, its training log "
        f"`final/metrics.csv`.\n\nInput notes:\n{notes}")


def _align_all(cfg: MVCNetConfig, data: Pooled) -> np.ndarray:
    labelled = np.flatnonzero(data.y >= 0)
    Xtr, _ = preprocess(cfg, data, labelled, labelled[:0])
    return Xtr

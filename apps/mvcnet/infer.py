"""``medcl mvcnet predict``: decode the trials of a new recording with a trained run."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd

from .config import MVCNetConfig


def load_run(run_dir: Path):
    """(config, run metadata, model) of a ``medcl mvcnet train`` run folder."""
    from medcl.io import ConfigError, RunFolder

    from .train import build_model

    folder = RunFolder(Path(run_dir))
    raw = folder.read_config()
    meta = {k: raw.get(k) for k in ("ch_names", "sfreq", "classes", "n_times", "events")}
    if not raw.get("config") or any(meta[k] is None for k in ("ch_names", "sfreq", "classes",
                                                                "n_times")):
        raise ConfigError("config.yaml is not an MVCNet run's (no channels/classes recorded)",
                          path=folder.config_path,
                          fix="pass the folder written by `medcl mvcnet train --out RUN`")
    known = {f.name for f in fields(MVCNetConfig)}
    cfg = MVCNetConfig(**{k: v for k, v in raw["config"].items() if k in known})
    model = build_model(cfg, len(meta["ch_names"]), int(meta["n_times"]), len(meta["classes"]),
                        float(meta["sfreq"]))
    state = folder.load_model()
    head = {k for k in model.state_dict() if k.startswith("fused_classifier.")}
    if head and not head & set(state):
        # A run trained before the fused head existed: its network is complete; only
        # ``--infer fused`` has nothing to read (predict_file refuses it).
        state = {**model.state_dict(), **state}
        model.has_fused_head = False
    model.load_state_dict(state)
    return cfg, meta, model.eval()


def predict_file(run_dir: Path, data: Path, out: Path, *, events: str | None = None,
                 labels: Path | None = None, infer: str | None = None) -> pd.DataFrame:
    """One row per trial: onset (s), predicted class, class probabilities, true class if known.

    The recording is read with the run's channels (in its order), band, rate and window; trials
    are standardised if the run was (``--ems``) and aligned with incremental online Euclidean
    alignment in recording order (centred covariances, as in training; a deployed decoder has
    no whole test set, so the run's ``--test-alignment authors`` does not apply here). Without
    ``events`` the run's mapping is used, plus
    ``unknown=783``: cues of unknown class (BCI IV 2a evaluation sessions) are decoded too.
    What reading changed (resampling, trials dropped, ...) is in ``table.attrs["notes"]``.
    """
    from medcl.io import ConfigError, InputFileError, atomic_path, refuse_overwrite
    from medcl.io.eeg import UNKNOWN_CLASS, parse_events, read_trials

    from .config import INFER_MODES
    from .preprocess import OnlineEA, exponential_moving_standardize
    from .train import predict_proba

    if Path(out).suffix.lower() != ".csv":
        raise ConfigError(f"unknown output format {Path(out).suffix or '(none)'!r}", path=out,
                          fix="name the output *.csv")
    refuse_overwrite(out, [data] + ([labels] if labels else []))
    if infer is not None and infer not in INFER_MODES:
        raise ConfigError(f"unknown inference mode {infer!r}",
                          fix=f"choose --infer {' or '.join(INFER_MODES)}")
    cfg, meta, model = load_run(run_dir)
    classes = list(meta["classes"])
    if events:
        named = [c for c in parse_events(events) if c != UNKNOWN_CLASS]
        if sorted(named) != sorted(classes):
            raise ConfigError(f"--events names the classes {named}, the model was trained on "
                              f"{classes}", fix=f"map the model's classes {', '.join(classes)} "
                              f"(and optionally {UNKNOWN_CLASS}=CODE) in --events")
        mapping = events
    else:
        mapping = meta["events"] or ",".join(
            f"{c}={code}" for c, code in zip(classes, ("769", "770", "771", "772"), strict=False))
        parsed = parse_events(mapping)
        if UNKNOWN_CLASS not in parsed and not any(
                "783" in codes for codes in parsed.values()):
            mapping += f",{UNKNOWN_CLASS}=783"
    trials = read_trials(data, mapping, tmin=0.0 if cfg.tmin is None else cfg.tmin,
                         tmax=4.0 if cfg.tmax is None else cfg.tmax, l_freq=cfg.l_freq,
                         h_freq=cfg.h_freq, notch=cfg.notch, resample=meta["sfreq"],
                         labels_file=labels, channels=list(meta["ch_names"]))
    if trials.data.shape[2] != int(meta["n_times"]):
        raise InputFileError(f"trials have {trials.data.shape[2]} samples, the model "
                             f"{meta['n_times']}", path=data,
                             fix="use the same trial window as in training")
    X = trials.data.astype(np.float32)
    if cfg.ems:  # as in training (harness.preprocess): standardise, then align
        X = exponential_moving_standardize(X).astype(np.float32)
    if cfg.alignment == "ea":
        X = OnlineEA(X.shape[1]).transform(X, update=True).astype(np.float32)
    if (infer or cfg.infer) == "fused" and not getattr(model, "has_fused_head", True):
        raise ConfigError(f"{run_dir} was trained before MVCNet had a fused head (its "
                          "checkpoint has no fused_classifier)",
                          fix="use --infer cnn, or train the run again")
    proba = predict_proba(model, X, infer or cfg.infer)
    table = pd.DataFrame({"onset_s": np.round(trials.onsets, 4),
                          "predicted": [classes[i] for i in proba.argmax(1)]})
    for k, name in enumerate(classes):
        table[f"p_{name}"] = proba[:, k]
    if (trials.labels >= 0).any():
        table["true"] = [trials.classes[i] if i >= 0 else "" for i in trials.labels]
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False)
    table.attrs["notes"] = list(trials.notes)
    return table

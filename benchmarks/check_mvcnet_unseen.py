"""MVCNet against CSP+LDA on a recording nobody here tuned to (issue 11, "check").

The recording comes from a generator written for this check only, independent of
:mod:`medcl.mvcnet.simulate` (whose recordings the app and its tests were developed on): a
different background, a different forward model and non-stationarities the other lacks.

* 22 channels of BCI Competition IV 2a at their 10-20 positions (MNE's ``standard_1020``
  montage), 250 Hz, 200 cued trials (100 left hand, 100 right hand, in shuffled blocks of 20),
  4 s of imagery after each cue, 2-3.5 s of rest between trials.
* Background: 60 random dipole-like sources spread over the scalp sphere, each with an AR(2)
  "alpha-ish" or 1/f time course, projected with a smooth distance kernel; plus sensor noise,
  50 Hz line noise, and slow (< 1 Hz) frontal eye artefacts.
* Sensorimotor rhythms: one source in each hand area (under C3 and C4, a tangential-ish
  topography with a random sign pattern) carrying a mu rhythm (subject peak 9-12 Hz) and a beta
  rhythm (18-24 Hz), both bursty (amplitude envelopes that wander on a ~0.5 s scale).
* Event-related desynchronisation (Pfurtscheller & Lopes da Silva 1999): imagery of one hand
  lowers the mu/beta amplitude of the contralateral source to ``erd`` (0.55 by default, i.e.
  about 70 % less power) after a random 0.3-0.8 s latency, and raises the ipsilateral one by 10 %
  ; trial-to-trial depth varies by +-15 %.
* Non-stationarity: the rhythm gains drift by +-20 % across the session, the background level by
  +-10 %, so the chronological split of CO (first 80 % to train) sees a slightly other recording
  at test time.

The run: the harness's CO protocol (``medcl.mvcnet.harness.run_protocol``) on the recording as
read by ``medcl.io.eeg`` (8-32 Hz band-pass, [0, 4) s windows), models ``mvcnet`` (its CNN and
fused heads), ``mvcnet_cnn`` (the CNN branch alone) and ``csp_lda``, every seed, under the
default test-time alignment (online) and the authors'. Prints one table (Markdown) per test
alignment; ``--out`` also writes them (CSV) with the per-split rows.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/check_mvcnet_unseen.py --epochs 100 --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SFREQ = 250.0
CHANNELS = ["Fz", "FC3", "FC1", "FCz", "FC2", "FC4", "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
            "CP3", "CP1", "CPz", "CP2", "CP4", "P1", "Pz", "P2", "POz"]


def _positions() -> np.ndarray:
    """Unit-sphere positions (22, 3) of the channels, from MNE's standard 10-20 montage."""
    import warnings

    import mne

    with warnings.catch_warnings():  # MNE 1.11+ renames the montage; the positions are the same
        warnings.simplefilter("ignore", FutureWarning)
        montage = mne.channels.make_standard_montage("standard_1020")
    pos = montage.get_positions()["ch_pos"]
    xyz = np.array([pos[c] for c in CHANNELS])
    xyz -= xyz.mean(axis=0) * np.array([1, 1, 0])
    return xyz / np.linalg.norm(xyz, axis=1, keepdims=True)


def _ar2(rng: np.random.Generator, n: int, freq: float, r: float) -> np.ndarray:
    """A resonant AR(2) process at ``freq`` Hz with pole radius ``r`` (unit variance)."""
    from scipy.signal import lfilter

    theta = 2 * np.pi * freq / SFREQ
    x = lfilter([1.0], [1.0, -2 * r * np.cos(theta), r * r], rng.normal(size=n + 500))[500:]
    return x / x.std()


def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1 / SFREQ)
    spectrum[1:] /= np.sqrt(f[1:])
    spectrum[0] = 0
    x = np.fft.irfft(spectrum, n)
    return x / x.std()


def _envelope(rng: np.random.Generator, n: int, scale_s: float = 0.5) -> np.ndarray:
    """A positive, slowly wandering amplitude (log-normal, smoothed on ``scale_s``)."""
    from scipy.ndimage import gaussian_filter1d

    g = gaussian_filter1d(rng.normal(size=n), scale_s * SFREQ)
    return np.exp(0.5 * g / (g.std() + 1e-12))


def unseen_recording(seed: int = 0, n_trials: int = 200, erd: float = 0.55):
    """The recording described in the module docstring, as an ``mne.io.RawArray`` (µV scaled
    to volts) with annotations ``769`` (left) / ``770`` (right) at the cues."""
    import mne
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng(seed)
    xyz = _positions()
    # trial schedule: shuffled blocks of 20 (10 per class)
    labels = np.concatenate([rng.permutation([0] * 10 + [1] * 10) for _ in range(n_trials // 20)])
    lead, trial_s = 3.0, 4.0
    rests = rng.uniform(2.0, 3.5, size=n_trials)
    onsets = lead + np.concatenate([[0], np.cumsum(trial_s + rests[:-1])])
    n = int((onsets[-1] + trial_s + 3.0) * SFREQ)
    t = np.arange(n) / SFREQ

    # background: random sources on the sphere, smooth projection
    n_bg = 60
    src = rng.normal(size=(n_bg, 3))
    src = 0.8 * src / np.linalg.norm(src, axis=1, keepdims=True)
    dist = np.linalg.norm(xyz[:, None] - src[None], axis=2)
    lead_bg = np.exp(-(dist ** 2) / (2 * 0.35 ** 2)) * rng.choice([-1, 1], size=n_bg)
    courses = np.stack([_ar2(rng, n, rng.uniform(7, 13), 0.97) if k % 3 == 0 else _pink(rng, n)
                        for k in range(n_bg)])
    background = lead_bg @ courses
    background *= 10.0 / background.std()
    drift_bg = 1 + 0.1 * np.sin(2 * np.pi * t / t[-1] + rng.uniform(0, 2 * np.pi))
    data = background * drift_bg + 2.0 * rng.normal(size=(22, n))
    data += 1.5 * np.sin(2 * np.pi * 50 * t + rng.uniform(0, 2 * np.pi))  # line noise
    eog = gaussian_filter1d(rng.normal(size=n), 0.4 * SFREQ)
    frontal = np.exp(-np.linalg.norm(xyz - xyz[CHANNELS.index("Fz")], axis=1) ** 2 / 0.2)
    data += 30.0 * np.outer(frontal, eog / eog.std())

    # sensorimotor sources under C3 (left hemisphere) and C4 (right hemisphere)
    mu_f, beta_f = rng.uniform(9, 12), rng.uniform(18, 24)
    mods = np.ones((2, n))  # amplitude modulation of the left / right source (ERD)
    for onset, label in zip(onsets, labels, strict=True):
        latency = rng.uniform(0.3, 0.8)
        start, stop = int((onset + latency) * SFREQ), int((onset + trial_s) * SFREQ)
        depth = np.clip(erd * rng.uniform(0.85, 1.15), 0.05, 1.0)
        contra = 1 if label == 0 else 0  # left hand -> right hemisphere (C4) source
        mods[contra, start:stop] = depth
        mods[1 - contra, start:stop] = 1.1
    mods = gaussian_filter1d(mods, 0.15 * SFREQ, axis=1)  # smooth onsets and recoveries
    for k, centre in enumerate(("C3", "C4")):
        c = xyz[CHANNELS.index(centre)]
        offset = rng.normal(scale=0.08, size=3)
        d = np.linalg.norm(xyz - (c * 0.85 + offset), axis=1)
        topo = np.exp(-(d ** 2) / (2 * 0.22 ** 2))
        topo = topo * (1 + 0.3 * rng.normal(size=22))  # a less tidy pattern than a blob
        mu = _ar2(rng, n, mu_f + rng.normal(scale=0.3), 0.985) * _envelope(rng, n)
        beta = _ar2(rng, n, beta_f + rng.normal(scale=0.5), 0.97) * _envelope(rng, n, 0.3)
        drift = 1 + 0.2 * np.sin(2 * np.pi * t / t[-1] * rng.uniform(0.5, 1.5)
                                 + rng.uniform(0, 2 * np.pi))
        data += np.outer(topo, 9.0 * (mu + 0.5 * beta) * mods[k] * drift)

    info = mne.create_info(CHANNELS, SFREQ, "eeg")
    raw = mne.io.RawArray(data * 1e-6, info, verbose="error")
    raw.set_annotations(mne.Annotations(onsets, trial_s, ["769" if y == 0 else "770"
                                                          for y in labels]))
    return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--data-seed", type=int, default=0, help="Seed of the recording.")
    parser.add_argument("--erd", type=float, default=0.55,
                        help="Contralateral rhythm amplitude during imagery (1 = no ERD).")
    parser.add_argument("--models", default="mvcnet,mvcnet_cnn,csp_lda")
    parser.add_argument("--test-alignments", default="online,authors")
    parser.add_argument("--out", type=Path, default=None, help="Folder for the CSV tables.")
    args = parser.parse_args(argv)

    import pandas as pd

    from medcl.mvcnet.config import MVCNetConfig
    from medcl.mvcnet.harness import load_data, run_protocol, summarise

    seeds = [int(s) for s in args.seeds.split(",")]
    models = args.models.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "unseen_raw.fif"
        unseen_recording(args.data_seed, erd=args.erd).save(path, verbose="error")
        base = MVCNetConfig(epochs=args.epochs, seeds=seeds, protocol="co")
        data = load_data(base, files=[path], events="left=769,right=770")
    print(f"recording: {len(data.y)} trials, {data.X.shape[1]} channels, {data.X.shape[2]} "
          f"samples at {data.sfreq:g} Hz; protocol CO; {args.epochs} epochs; seeds {seeds}",
          file=sys.stderr, flush=True)
    tables = []
    for test_alignment in args.test_alignments.split(","):
        cfg = MVCNetConfig(epochs=args.epochs, seeds=seeds, protocol="co",
                           test_alignment=test_alignment)
        start = time.perf_counter()
        table, _ = run_protocol(cfg, data, models, progress=False)
        table["test_alignment"] = test_alignment
        summary = summarise(table)
        print(f"\nCO, test-time alignment {test_alignment} ({time.perf_counter() - start:.0f} s)"
              f":\n{summary.to_markdown(index=False, floatfmt='.2f')}", flush=True)
        tables.append(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        pd.concat(tables).to_csv(args.out / "check_mvcnet_unseen_splits.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

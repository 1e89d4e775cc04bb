"""Simulated motor-imagery EEG recordings, for demos and tests.

A recording imitates one session of BCI Competition IV dataset 2a (Tangermann et al. 2012,
doi:10.3389/fnins.2012.00055): the same 22 10-20 electrodes at 250 Hz, cues annotated with the
GDF codes 769-772, ``trial_s`` seconds of imagery after each cue and a random rest before the
next one.

The signal is the sum of

* background activity with a 1/f ("pink") power spectrum on every channel, mixed a little
  between neighbouring electrodes (a Gaussian kernel over electrode distance);
* three sensorimotor sources below C3, C4 and Cz, each carrying a mu (alpha band, subject peak
  9-12 Hz) and a beta (18-26 Hz) rhythm, projected to the electrodes with a Gaussian fall-off
  over distance;
* event-related desynchronisation (ERD, Pfurtscheller & Lopes da Silva 1999,
  doi:10.1016/S1388-2457(99)00141-8): during imagery of the left hand the rhythm power of the
  right-hemisphere source (C4) drops to 30-50 % of rest, with a weaker drop over the left
  hemisphere; right hand mirrors this (C3); feet desynchronise the midline source (Cz); tongue
  imagery gives a bilateral hand-area synchronisation (ERS; Pfurtscheller et al. 2006,
  doi:10.1016/j.neuroimage.2005.12.003).

Subjects differ in ERD depth, mu and beta peak frequencies, rhythm strength and channel gains;
``snr`` scales the rhythms against the background. Everything is drawn from
``numpy.random.default_rng((seed, subject))``, so a (subject, seed) pair always gives the same
recording.
"""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medcl.io import ConfigError, atomic_path

if TYPE_CHECKING:  # pragma: no cover
    import mne

__all__ = [
    "EVENT_CODES",
    "FORMATS",
    "MONTAGE_22",
    "simulate_raw",
    "write_simulated",
]

MONTAGE_22: list[str] = [
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4",
    "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP3", "CP1", "CPz", "CP2", "CP4",
    "P1", "Pz", "P2", "POz",
]  # fmt: skip
"""The 22 EEG channels of BCI Competition IV dataset 2a, in the file's order."""

EVENT_CODES: dict[str, str] = {"left": "769", "right": "770", "feet": "771", "tongue": "772"}
"""Class name to GDF cue code (as in BCI Competition IV 2a)."""

FORMATS: dict[str, str] = {
    "edf": ".edf",
    "fif": "_eeg.fif",
    "vhdr": ".vhdr",
    "brainvision": ".vhdr",
}
"""Output format to file-name ending (``sub-01.edf``, ``sub-01_eeg.fif``, ``sub-01.vhdr``)."""

_NOISE_UV = 10.0  # broadband background std per channel (µV)
_MU_UV = 6.0  # mu rhythm std at its source electrode for snr = 1 (µV)
_BETA_UV = 3.0  # beta rhythm std at its source electrode for snr = 1 (µV)
_SOURCE_SIGMA_M = 0.03  # spatial spread of a sensorimotor source (m)
_NOISE_SIGMA_M = 0.02  # spatial correlation length of the background (m)
_LEAD_S = 3.0  # recording before the first cue (s)
_TAIL_S = 3.0  # recording after the last imagery period (s)
_RAMP_S = 0.5  # ERD onset and recovery time (s)
_MEAS_DATE = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)


def _montage() -> mne.channels.DigMontage:
    """The template 10-20 montage (``standard_1020``; its new name in MNE >= 1.13)."""
    import mne

    name = "colin27_1020" if "colin27_1020" in mne.channels.get_builtin_montages() else (
        "standard_1020"
    )
    return mne.channels.make_standard_montage(name)


def _positions() -> np.ndarray:
    pos = _montage().get_positions()["ch_pos"]
    return np.array([pos[name] for name in MONTAGE_22], dtype=float)


def _pink(rng: np.random.Generator, n_series: int, n: int, sfreq: float) -> np.ndarray:
    """``(n_series, n)`` unit-variance noise with 1/f power above 0.5 Hz."""
    spec = np.fft.rfft(rng.standard_normal((n_series, n)), axis=1)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec *= 1.0 / np.sqrt(np.maximum(freqs, 0.5))
    spec[:, 0] = 0.0
    out = np.fft.irfft(spec, n=n, axis=1)
    return out / out.std(axis=1, keepdims=True)


def _narrowband(
    rng: np.random.Generator, n_series: int, n: int, sfreq: float, peak: float, width: float
) -> np.ndarray:
    """``(n_series, n)`` unit-variance noise with a Gaussian spectral peak (``width`` = sd, Hz)."""
    spec = np.fft.rfft(rng.standard_normal((n_series, n)), axis=1)
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec *= np.exp(-0.5 * ((freqs - peak) / width) ** 2)
    out = np.fft.irfft(spec, n=n, axis=1)
    return out / out.std(axis=1, keepdims=True)


def _ramp(t: np.ndarray, start: float, length: float) -> np.ndarray:
    """0 before ``start``, 1 after ``start + length``, raised cosine in between."""
    x = np.clip((t - start) / length, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * x)


def _check(classes: Sequence[str], n_trials_per_class: int, sfreq: float, snr: float,
           trial_s: float, rest_s: Sequence[float]) -> None:
    unknown = [c for c in classes if c not in EVENT_CODES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ConfigError(
            f"bad classes {list(classes)!r}",
            fix=f"choose distinct classes among {', '.join(EVENT_CODES)}",
        )
    if int(n_trials_per_class) < 1:
        raise ConfigError(f"n_trials_per_class must be at least 1, got {n_trials_per_class}",
                          fix="simulate at least one trial per class")
    if not sfreq >= 100:
        raise ConfigError(f"sfreq must be at least 100 Hz to hold the beta band, got {sfreq}",
                          fix="use e.g. 250 Hz")
    if not snr >= 0:
        raise ConfigError(f"snr must be non-negative, got {snr}", fix="use e.g. 1.0")
    if not trial_s > 0:
        raise ConfigError(f"trial_s must be positive, got {trial_s}", fix="use e.g. 4.0")
    if len(rest_s) != 2 or not 0 < rest_s[0] <= rest_s[1]:
        raise ConfigError(f"rest_s must be (min, max) seconds with 0 < min <= max, got {rest_s}",
                          fix="use e.g. (1.5, 2.5)")


def simulate_raw(
    subject: int = 1,
    *,
    n_trials_per_class: int = 40,
    classes: Sequence[str] = ("left", "right"),
    sfreq: float = 250.0,
    snr: float = 1.0,
    trial_s: float = 4.0,
    rest_s: tuple[float, float] = (1.5, 2.5),
    seed: int = 0,
) -> mne.io.RawArray:
    """Simulate one motor-imagery session of one subject.

    Parameters
    ----------
    subject : int
        Subject number; with ``seed`` it fixes the subject's traits and the recording.
    n_trials_per_class : int
        Cues per class, presented in a random order.
    classes : sequence of str
        Classes among :data:`EVENT_CODES` (``left``, ``right``, ``feet``, ``tongue``).
    sfreq : float
        Sampling rate in Hz.
    snr : float
        Scale of the sensorimotor rhythms (mu 6 µV, beta 3 µV at their source electrode for
        ``snr = 1``) against a 10 µV pink background; ``0`` gives background only.
    trial_s : float
        Imagery period after each cue in seconds (ERD lasts this long).
    rest_s : (float, float)
        Range of the uniformly drawn rest between the end of one imagery period and the next
        cue, in seconds.
    seed : int
        Random seed.

    Returns
    -------
    mne.io.RawArray
        22 EEG channels (:data:`MONTAGE_22`) in volts with the 10-20 template montage, and one
        annotation per cue (description: the class's code in :data:`EVENT_CODES`, duration
        ``trial_s``), ``_LEAD_S`` seconds of rest before the first cue and after the last trial.
    """
    import mne

    classes = tuple(classes)
    rest_lo, rest_hi = (float(x) for x in rest_s)
    sfreq, trial_s, snr = float(sfreq), float(trial_s), float(snr)
    _check(classes, n_trials_per_class, sfreq, snr, trial_s, (rest_lo, rest_hi))
    rng = np.random.default_rng((int(seed), int(subject)))

    # subject traits
    mu_peak = rng.uniform(9.0, 12.0)
    beta_peak = rng.uniform(18.0, 26.0)
    erd_power = rng.uniform(0.3, 0.5)  # contralateral rhythm power during imagery / rest
    rhythm_scale = rng.uniform(0.85, 1.15, size=3)  # C3, C4, Cz sources
    gains = rng.uniform(0.9, 1.1, size=len(MONTAGE_22))

    # timeline
    order = rng.permutation(np.repeat(np.arange(len(classes)), int(n_trials_per_class)))
    rests = rng.uniform(rest_lo, rest_hi, size=len(order))
    cues = _LEAD_S + np.concatenate([[0.0], np.cumsum(trial_s + rests[:-1])])
    cues = np.round(cues * sfreq) / sfreq  # cues on samples
    n = int(np.ceil((cues[-1] + trial_s + _TAIL_S) * sfreq))
    t = np.arange(n) / sfreq

    # envelopes (amplitude factors) of the C3, C4 and Cz sources
    env = np.ones((3, n))
    for cue, k in zip(cues, order, strict=True):
        depth = 1.0 - np.clip(erd_power + rng.normal(0.0, 0.08), 0.1, 0.9)  # power lost
        power = {  # source power factor during imagery: (C3, C4, Cz)
            "left": (1.0 - 0.2 * depth, 1.0 - depth, 1.0),
            "right": (1.0 - depth, 1.0 - 0.2 * depth, 1.0),
            "feet": (1.0, 1.0, 1.0 - depth),
            "tongue": (1.0 + 0.6 * depth, 1.0 + 0.6 * depth, 1.0),
        }[classes[k]]
        shape = _ramp(t, cue, _RAMP_S) - _ramp(t, cue + trial_s, _RAMP_S)
        for s in range(3):
            env[s] += (np.sqrt(power[s]) - 1.0) * shape

    # sources -> electrodes
    pos = _positions()
    centres = pos[[MONTAGE_22.index(c) for c in ("C3", "C4", "Cz")]]
    dist = np.linalg.norm(pos[:, None, :] - centres[None, :, :], axis=2)
    forward = np.exp(-0.5 * (dist / _SOURCE_SIGMA_M) ** 2)  # (22, 3)
    mu = _narrowband(rng, 3, n, sfreq, mu_peak, 1.0)
    beta = _narrowband(rng, 3, n, sfreq, beta_peak, 2.0)
    beta_env = 1.0 - 0.7 * (1.0 - env)  # beta desynchronises a little less than mu
    sources = snr * rhythm_scale[:, None] * (_MU_UV * env * mu + _BETA_UV * beta_env * beta)

    # background
    d_all = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=2)
    mix = np.exp(-0.5 * (d_all / _NOISE_SIGMA_M) ** 2)
    mix /= np.sqrt((mix**2).sum(axis=1, keepdims=True))
    noise = _NOISE_UV * (mix @ _pink(rng, len(MONTAGE_22), n, sfreq))

    data_uv = gains[:, None] * (noise + forward @ sources)
    info = mne.create_info(list(MONTAGE_22), sfreq, "eeg")
    raw = mne.io.RawArray(data_uv * 1e-6, info, verbose="error")
    raw.set_montage(_montage(), verbose="error")
    raw.set_meas_date(_MEAS_DATE)
    raw.set_annotations(
        mne.Annotations(
            onset=cues,
            duration=np.full(len(cues), trial_s),
            description=[EVENT_CODES[classes[k]] for k in order],
        )
    )
    return raw


def _subject_list(subjects: int | Iterable[int]) -> list[int]:
    if isinstance(subjects, int | np.integer):
        if subjects < 1:
            raise ConfigError(f"subjects must be at least 1, got {subjects}",
                              fix="simulate at least one subject")
        return list(range(1, int(subjects) + 1))
    chosen = [int(s) for s in subjects]
    if not chosen or min(chosen) < 1 or len(set(chosen)) != len(chosen):
        raise ConfigError(f"bad subject numbers {chosen}",
                          fix="give distinct positive subject numbers")
    return chosen


def write_simulated(
    out_dir: str | os.PathLike[str],
    *,
    subjects: int | Iterable[int] = 3,
    fmt: str = "edf",
    overwrite: bool = False,
    **kwargs: object,
) -> list[Path]:
    """Write simulated recordings, one file per subject.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder to write into (created if missing).
    subjects : int or iterable of int
        Number of subjects (numbered from 1) or the subject numbers.
    fmt : str
        ``edf`` (EDF+ with annotations, via edfio), ``fif`` (MNE) or ``vhdr`` / ``brainvision``
        (BrainVision triplet via pybv; markers read back as ``Comment/769``).
    overwrite : bool
        Replace existing files of the same names; by default an existing file is a
        :class:`medcl.io.ConfigError` and nothing is written.
    **kwargs
        Passed to :func:`simulate_raw` (``n_trials_per_class``, ``snr``, ``seed``, ...).

    Returns
    -------
    list of pathlib.Path
        ``sub-01.edf``, ``sub-01_eeg.fif`` or ``sub-01.vhdr`` (with its ``.vmrk`` and ``.eeg``).
    """
    key = str(fmt).lower().lstrip(".")
    if key not in FORMATS:
        raise ConfigError(f"unknown output format {fmt!r}",
                          fix=f"choose one of {', '.join(FORMATS)}")
    out = Path(out_dir)
    targets = [out / f"sub-{subject:02d}{FORMATS[key]}" for subject in _subject_list(subjects)]
    sidecars = (".vmrk", ".eeg") if FORMATS[key] == ".vhdr" else ()
    existing = [f for t in targets for f in (t, *(t.with_suffix(x) for x in sidecars))
                if f.exists()]
    if existing and not overwrite:
        raise ConfigError(f"{len(existing)} file(s) to write already exist, e.g. {existing[0]}",
                          path=out, fix="choose an empty --out folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for subject, path in zip(_subject_list(subjects), targets, strict=True):
        raw = simulate_raw(subject, **kwargs)  # type: ignore[arg-type]
        if key == "fif":
            with atomic_path(path) as tmp, warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*naming conventions.*")
                raw.save(tmp, overwrite=True, verbose="error")
        elif key == "edf":
            import mne

            with atomic_path(path) as tmp:
                mne.export.export_raw(tmp, raw, fmt="edf", overwrite=True, verbose="error")
        else:
            _write_brainvision(raw, path)
        paths.append(path)
    return paths


def _write_brainvision(raw: mne.io.BaseRaw, path: Path) -> None:
    """Export to a temporary folder under the final name, then move each file into place
    (header last, so a reader never finds a header without its data)."""
    import mne

    folder = Path(tempfile.mkdtemp(prefix=f".{path.stem}.tmp-", dir=path.parent))
    try:
        mne.export.export_raw(folder / path.name, raw, fmt="brainvision", overwrite=True,
                              verbose="error")
        for suffix in (".eeg", ".vmrk", ".vhdr"):
            target = path.with_suffix(suffix)
            with atomic_path(target) as tmp:
                os.replace(folder / target.name, tmp)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

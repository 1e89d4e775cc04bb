"""EEG recordings: read files or MOABB datasets into trials of one shape.

One reader for every app that decodes event-related EEG (motor imagery first): a recording in
any common format (GDF, EDF, BDF, FIF, BrainVision, EEGLAB) or a MOABB dataset becomes an
:class:`EEGTrials` -- ``(n_trials, n_channels, n_times)`` float32 microvolts, one integer label
per trial and notes saying what was changed on the way.

Files follow the steps of MOABB's ``MotorImagery`` paradigm (Jayaram & Barachant 2018,
doi:10.1088/1741-2552/aadea0): EEG channels only, band-pass (default 8-32 Hz) on the continuous
recording, optional resampling, then one window per cue ``[tmin, tmax)`` seconds around the
cue, cut by :class:`mne.Epochs` (``baseline=None, reject_by_annotation=True``): a window over a
``BAD`` annotation -- e.g. the boundary :func:`mne.concatenate_raws` marks between two runs --
is dropped, and the notes quote MNE's drop log. Cues come from the recording's annotations
(MNE turns GDF/EDF events and BrainVision markers into annotations), matched against a class
mapping such as ``"left=769,right=770"``. MOABB datasets go through MOABB's own paradigm.

Importing this module imports NumPy and MNE; MOABB and SciPy are imported by the functions that
need them. :mod:`medcl.io` itself does not import this module.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import mne
import numpy as np

from .errors import ConfigError, InputFileError

__all__ = [
    "BCI_IV_2A_CHANNELS",
    "FAKE_DATASET",
    "MOABB_DATASETS",
    "READERS",
    "UNKNOWN_CLASS",
    "EEGTrials",
    "load_moabb",
    "match_code",
    "parse_events",
    "read_raw",
    "read_trials",
    "supported_suffix",
    "trials_from_raw",
]

PathLike = str | os.PathLike[str]
EventsArg = Mapping[str, Any] | str

MOABB_DATASETS: tuple[str, ...] = (
    "BNCI2014_001",
    "BNCI2014_004",
    "Zhou2016",
    "BNCI2014_002",
    "BNCI2015_001",
    "PhysionetMI",
)
"""MOABB dataset classes :func:`load_moabb` accepts by name (others via ``dataset=``)."""

FAKE_DATASET = "FakeDataset"
"""Also accepted by :func:`load_moabb`: MOABB's ``FakeDataset`` (3 subjects x 2 sessions of
random noise on C3, Cz, C4 at 128 Hz with ``left_hand``/``right_hand`` cues), made offline."""

UNKNOWN_CLASS = "unknown"
"""A class of this name in an event mapping marks cues of unknown class (label ``-1``)."""

CUE_UNKNOWN_CODE = "783"
"""GDF code of a cue whose class is not in the file (BCI Competition IV evaluation sessions)."""

BCI_IV_2A_CHANNELS: tuple[str, ...] = (
    "Fz", "FC3", "FC1", "FCz", "FC2", "FC4",
    "C5", "C3", "C1", "Cz", "C2", "C4", "C6",
    "CP3", "CP1", "CPz", "CP2", "CP4",
    "P1", "Pz", "P2", "POz",
)  # fmt: skip
"""The 22 EEG channels of BCI Competition IV dataset 2a (10-20 names, file order)."""

_BCI_IV_2A_GDF_LABELS: tuple[str, ...] = (
    "EEG-Fz", "EEG-0", "EEG-1", "EEG-2", "EEG-3", "EEG-4",
    "EEG-5", "EEG-C3", "EEG-6", "EEG-Cz", "EEG-7", "EEG-C4", "EEG-8",
    "EEG-9", "EEG-10", "EEG-11", "EEG-12", "EEG-13",
    "EEG-14", "EEG-Pz", "EEG-15", "EEG-16",
)  # fmt: skip
"""How the BCI IV 2a GDF files label those channels (``EEG-Fz``, ``EEG-0``, ... ``EEG-16``)."""

_FIX_NAMING = "does not conform to MNE naming conventions"

_NON_EEG_NAMES = ("EOG", "ECG", "EKG", "EMG")
"""Channels whose name contains one of these are not EEG, whatever their type (HEOG, VEOG,
EOG-left, ECG, EMG1 ...)."""


@dataclass
class EEGTrials:
    """Trials cut from one recording (one subject and session).

    Attributes
    ----------
    data : numpy.ndarray
        ``(n_trials, n_channels, n_times)`` float32, microvolts.
    labels : numpy.ndarray
        ``(n_trials,)`` int64 index into :attr:`classes`; ``-1`` where the class is unknown
        (e.g. BCI Competition IV 2a evaluation session read without its labels file).
    classes : list of str
        Class names in label order (the order of the event mapping).
    ch_names : list of str
        Channel names, in the order of axis 1 of :attr:`data`.
    sfreq : float
        Sampling rate of :attr:`data` in Hz.
    onsets : numpy.ndarray
        ``(n_trials,)`` float64 cue time in seconds from the start of the recording.
    subject, session : str
        Identifiers (the file stem and ``""`` by default for files).
    source : str
        The file path, or ``"moabb:<dataset id>"``.
    notes : list of str
        What was changed on the way (channels dropped, filtered, resampled, trials dropped).
    """

    data: np.ndarray
    labels: np.ndarray
    classes: list[str]
    ch_names: list[str]
    sfreq: float
    onsets: np.ndarray
    subject: str = ""
    session: str = ""
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.data.ndim != 3:
            raise ValueError(f"data must be (n_trials, n_channels, n_times), got {self.data.shape}")
        n, c, _ = self.data.shape
        if self.labels.shape != (n,) or self.onsets.shape != (n,):
            raise ValueError(
                f"labels {self.labels.shape} and onsets {self.onsets.shape} must be ({n},)"
            )
        if len(self.ch_names) != c:
            raise ValueError(f"{len(self.ch_names)} channel names for {c} channels")

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_times(self) -> int:
        """Samples per trial."""
        return int(self.data.shape[2])

    def class_counts(self) -> dict[str, int]:
        """Trials per class name (and ``"unknown"`` for label ``-1`` when present)."""
        counts = {name: int((self.labels == k).sum()) for k, name in enumerate(self.classes)}
        unknown = int((self.labels < 0).sum())
        if unknown:
            counts[UNKNOWN_CLASS] = unknown
        return counts

    def select(self, idx: Any) -> EEGTrials:
        """A new :class:`EEGTrials` with the trials ``idx`` (indices, slice or boolean mask).

        Arrays are copied; the notes list is copied too.
        """
        if isinstance(idx, slice):
            take = np.arange(len(self))[idx]
        else:
            take = np.asarray(idx)
            if take.dtype == bool:
                if take.shape != (len(self),):
                    raise ValueError(f"boolean mask of shape {take.shape} for {len(self)} trials")
                take = np.flatnonzero(take)
            take = take.astype(np.int64).reshape(-1)
        return replace(
            self,
            data=self.data[take].copy(),
            labels=self.labels[take].copy(),
            onsets=self.onsets[take].copy(),
            classes=list(self.classes),
            ch_names=list(self.ch_names),
            notes=list(self.notes),
        )


# -- event mappings ------------------------------------------------------------------------------
_EVENTS_FIX = (
    "write the mapping as 'class=code,class=code', e.g. 'left=769,right=770' or "
    "'left=769|T1,right=770|T2'"
)


def parse_events(text: str) -> dict[str, list[str]]:
    """Parse a class-to-event-code mapping.

    Parameters
    ----------
    text : str
        Comma-separated ``class=code`` pairs; a class may have several codes separated by
        ``|``: ``"left=769,right=770"``, ``"left=T1,right=T2"``, ``"left=769|T1"``.

    Returns
    -------
    dict of str to list of str
        Class name to its codes, in the order written (which is the label order).

    Raises
    ------
    ConfigError
        If a part is malformed, a class is repeated or a code belongs to two classes; the
        message quotes the bad part.

    Examples
    --------
    >>> parse_events("left=769|T1, right=770")
    {'left': ['769', 'T1'], 'right': ['770']}
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the event mapping is empty", fix=_EVENTS_FIX)
    mapping: dict[str, list[str]] = {}
    for raw_part in text.split(","):
        part = raw_part.strip()
        if not part:
            raise ConfigError(f"empty entry in the event mapping {text!r}", fix=_EVENTS_FIX)
        name, eq, codes_text = part.partition("=")
        name = name.strip()
        if not eq or not name:
            raise ConfigError(
                f"bad entry {part!r} in the event mapping {text!r}: expected 'class=code'",
                fix=_EVENTS_FIX,
            )
        codes = [c.strip() for c in codes_text.split("|")]
        if not all(codes):
            raise ConfigError(
                f"bad entry {part!r} in the event mapping {text!r}: empty event code",
                fix=_EVENTS_FIX,
            )
        if name in mapping:
            raise ConfigError(
                f"class {name!r} appears twice in the event mapping {text!r}",
                fix="list each class once; give several codes as 'name=code1|code2'",
            )
        mapping[name] = codes
    return _check_mapping(mapping, text)


def _check_mapping(mapping: dict[str, list[str]], shown: Any) -> dict[str, list[str]]:
    seen: dict[str, str] = {}
    for name, codes in mapping.items():
        for code in codes:
            key = _norm(code)
            if key in seen and seen[key] != name:
                raise ConfigError(
                    f"event code {code!r} is given for both {seen[key]!r} and {name!r} in the "
                    f"event mapping {shown!r}",
                    fix="give each event code to one class only",
                )
            seen[key] = name
    if all(name == UNKNOWN_CLASS for name in mapping):
        raise ConfigError(
            f"the event mapping {shown!r} has no class besides {UNKNOWN_CLASS!r}",
            fix=_EVENTS_FIX,
        )
    return mapping


def _as_mapping(events: EventsArg) -> dict[str, list[str]]:
    """A mapping given as text or as ``{class: code or [codes]}`` in canonical form."""
    if isinstance(events, str):
        return parse_events(events)
    if not isinstance(events, Mapping) or not events:
        raise ConfigError(f"the event mapping must be a non-empty mapping or text, got {events!r}",
                          fix=_EVENTS_FIX)
    mapping: dict[str, list[str]] = {}
    for name, codes in events.items():
        values = list(codes) if isinstance(codes, list | tuple | set) else [codes]
        texts = [str(c).strip() for c in values]
        if not str(name).strip() or not texts or not all(texts):
            raise ConfigError(f"bad entry {name!r}: {codes!r} in the event mapping",
                              fix=_EVENTS_FIX)
        mapping[str(name).strip()] = texts
    return _check_mapping(mapping, events)


def _norm(text: str) -> str:
    return "".join(str(text).split())


def match_code(description: str, code: str) -> bool:
    """Whether an annotation ``description`` carries the event ``code``.

    A description matches when it equals the code, or when its part after the last ``/``
    does (BrainVision markers read as ``Comment/769`` or ``Stimulus/S  1``); the comparison
    ignores white space, so ``S1`` matches ``Stimulus/S  1``. A purely numeric code also
    matches the BrainVision stimulus marker of that number (``1`` matches ``Stimulus/S  1``,
    not the response marker ``Response/R  1``).

    Examples
    --------
    >>> match_code("Comment/769", "769"), match_code("Stimulus/S  1", "S1")
    (True, True)
    >>> match_code("Stimulus/S  1", "1"), match_code("Response/R  1", "1")
    (True, False)
    >>> match_code("7690", "769")
    False
    """
    want = _norm(code)
    if not want:
        return False
    desc = str(description).strip()
    kind, _, marker = desc.rpartition("/")
    if _norm(desc) == want or _norm(marker) == want:
        return True
    marker = _norm(marker)
    return (want.isdigit() and kind.strip().lower() == "stimulus" and marker[:1] in "Ss"
            and marker[1:].isdigit() and int(marker[1:]) == int(want))


# -- reading files --------------------------------------------------------------------------------
def _read_fif(path: Path) -> mne.io.BaseRaw:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{_FIX_NAMING}.*")
        return mne.io.read_raw_fif(path, preload=True, verbose="error")


READERS: dict[str, Callable[[Path], mne.io.BaseRaw]] = {
    ".gdf": lambda p: mne.io.read_raw_gdf(p, preload=True, verbose="error"),
    ".edf": lambda p: mne.io.read_raw_edf(p, preload=True, verbose="error"),
    ".bdf": lambda p: mne.io.read_raw_bdf(p, preload=True, verbose="error"),
    ".fif": _read_fif,
    ".fif.gz": _read_fif,
    ".vhdr": lambda p: mne.io.read_raw_brainvision(p, preload=True, verbose="error"),
    ".set": lambda p: mne.io.read_raw_eeglab(p, preload=True, verbose="error"),
}
"""File suffix (lower case) to reader; each returns a preloaded :class:`mne.io.BaseRaw`."""


def supported_suffix(path: PathLike) -> str | None:
    """The key of :data:`READERS` that ``path`` ends with, or ``None``."""
    name = Path(path).name.lower()
    for suffix in sorted(READERS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return None


def read_raw(path: PathLike) -> mne.io.BaseRaw:
    """Read a continuous EEG recording with MNE (preloaded).

    Parameters
    ----------
    path : str or os.PathLike
        A ``.gdf``, ``.edf``, ``.bdf``, ``.fif``/``.fif.gz``, ``.vhdr`` (BrainVision, with its
        ``.vmrk`` and ``.eeg`` next to it) or ``.set`` (EEGLAB) file.

    Returns
    -------
    mne.io.BaseRaw

    Raises
    ------
    InputFileError
        If the file is missing, its suffix is not supported (the message lists the supported
        ones) or MNE cannot read it (the message quotes MNE).
    """
    path = Path(path)
    suffix = supported_suffix(path)
    if suffix is None:
        raise InputFileError(
            f"unsupported EEG file type {''.join(path.suffixes) or '(no suffix)'!r}",
            path=path,
            fix=f"convert the recording to one of {', '.join(READERS)} (e.g. with MNE)",
        )
    if not path.is_file():
        raise InputFileError(
            "EEG file not found" if not path.exists() else "not a file",
            path=path,
            fix="check the path (BrainVision: give the .vhdr file)",
        )
    try:
        return READERS[suffix](path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad input file
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(
            f"MNE cannot read this {suffix} file: {message}",
            path=path,
            fix="check that the file is complete and really in this format"
            + (" (a .vhdr needs its .vmrk and .eeg files)" if suffix == ".vhdr" else ""),
        ) from exc


# -- trials ----------------------------------------------------------------------------------------
def read_trials(
    path: PathLike,
    events: EventsArg,
    *,
    tmin: float = 0.0,
    tmax: float = 4.0,
    l_freq: float | None = 8.0,
    h_freq: float | None = 32.0,
    notch: float | None = None,
    resample: float | None = None,
    labels_file: PathLike | None = None,
    channels: Sequence[str] | None = None,
    subject: str | None = None,
    session: str | None = None,
) -> EEGTrials:
    """Read one recording and cut one trial per cue.

    Parameters
    ----------
    path : str or os.PathLike
        The recording (see :func:`read_raw` for the formats).
    events : str or mapping
        Class to event codes, e.g. ``"left=769,right=770"`` (see :func:`parse_events`) or
        ``{"left": ["769"], "right": ["770"]}``; the order is the label order. A class named
        ``unknown`` (e.g. ``unknown=783``) gives trials with label ``-1``.
    tmin, tmax : float
        Trial window in seconds relative to the cue; the end is exclusive, so ``0``-``4`` s at
        250 Hz gives 1000 samples.
    l_freq, h_freq : float or None
        Band-pass edges in Hz applied to the continuous recording (``None``: no high-pass or
        low-pass).
    notch : float or None
        Line frequency to remove (with its harmonics below Nyquist), e.g. 50.
    resample : float or None
        New sampling rate in Hz (applied before epoching when it differs).
    labels_file : str or os.PathLike, optional
        MATLAB file with ``classlabel`` (1-based, in mapping order), one per cue; cues are then
        the events of the mapping or code 783 (cue of unknown class), in time order. For BCI
        Competition IV 2a evaluation sessions (``A0xE.mat``).
    channels : sequence of str, optional
        EEG channels to keep, in this order.
    subject, session : str, optional
        Identifiers stored in the result (default: the file stem and ``""``).

    Returns
    -------
    EEGTrials

    Raises
    ------
    InputFileError
        For an unreadable file, no matching cue (the message lists the annotations found),
        windows outside the recording, NaN samples, missing channels or a bad labels file.
    ConfigError
        For a malformed event mapping or filter setting.
    """
    events_map = _as_mapping(events)  # check the mapping before reading a large file
    raw = read_raw(path)
    name = Path(path).name
    stem = name[: len(name) - len(supported_suffix(path) or "")]
    return trials_from_raw(
        raw,
        events_map,
        tmin=tmin,
        tmax=tmax,
        l_freq=l_freq,
        h_freq=h_freq,
        notch=notch,
        resample=resample,
        labels_file=labels_file,
        channels=channels,
        subject=stem if subject is None else str(subject),
        session="" if session is None else str(session),
        source=os.fspath(path),
    )


def trials_from_raw(
    raw: mne.io.BaseRaw,
    events: EventsArg,
    *,
    tmin: float = 0.0,
    tmax: float = 4.0,
    l_freq: float | None = 8.0,
    h_freq: float | None = 32.0,
    notch: float | None = None,
    resample: float | None = None,
    labels_file: PathLike | None = None,
    channels: Sequence[str] | None = None,
    subject: str | None = None,
    session: str | None = None,
    source: str,
) -> EEGTrials:
    """Cut trials from a loaded recording with :class:`mne.Epochs` (used by :func:`read_trials`).

    The steps: EEG channels (:func:`_pick_eeg`), finite samples, resampling, filtering of the
    continuous recording, cues from the annotations (:func:`_cues`), then one epoch per cue
    (:func:`_epoch`), ``baseline=None, reject_by_annotation=True``, so a window that overlaps
    a ``BAD`` annotation -- such as the ``BAD boundary`` that :func:`mne.concatenate_raws`
    puts at the seam between two runs -- is dropped, and said so in the notes with MNE's drop
    log. The recording is copied, never changed. Parameters are those of :func:`read_trials`;
    ``source`` (a path or ``"moabb:<id>"``) names the recording in messages and in the result.
    """
    mapping = _as_mapping(events)
    tmin, tmax = _check_window(tmin, tmax)
    notes: list[str] = []
    raw = _pick_eeg(raw, channels, source, notes)
    _check_finite(raw.get_data(), raw.ch_names, source)
    _resample(raw, resample, notes)
    _filter(raw, l_freq, h_freq, notch, notes)
    samples, labels = _cues(raw, mapping, labels_file, source)
    data, kept = _epoch(raw, samples, tmin, tmax, source, notes)
    sfreq = float(raw.info["sfreq"])
    return EEGTrials(
        data=data,
        labels=labels[kept].astype(np.int64),
        classes=[name for name in mapping if name != UNKNOWN_CLASS],
        ch_names=list(raw.ch_names),
        sfreq=sfreq,
        onsets=((samples[kept] - raw.first_samp) / sfreq).astype(np.float64),
        subject="" if subject is None else str(subject),
        session="" if session is None else str(session),
        source=source,
        notes=notes,
    )


def _check_window(tmin: float, tmax: float) -> tuple[float, float]:
    """``(tmin, tmax)`` as floats; a :class:`ConfigError` when the window is empty."""
    tmin, tmax = float(tmin), float(tmax)
    if not np.isfinite([tmin, tmax]).all() or tmax <= tmin:
        raise ConfigError(
            f"the trial window [{tmin}, {tmax}] s is empty", fix="choose tmax greater than tmin"
        )
    return tmin, tmax


def _n_times(tmin: float, tmax: float, sfreq: float) -> int:
    """Samples in the end-exclusive window ``[tmin, tmax)`` at ``sfreq``."""
    return int(round((tmax - tmin) * sfreq))


def _pick_eeg(
    raw: mne.io.BaseRaw, channels: Sequence[str] | None, where: str, notes: list[str]
) -> mne.io.BaseRaw:
    """A preloaded copy of ``raw`` with its EEG channels only (BCI IV 2a GDF labels renamed to
    10-20 names), or ``channels`` in that order."""
    raw = raw.copy()
    if not raw.preload:
        raw.load_data(verbose="error")
    picks = _eeg_channels(raw, where, notes)
    if tuple(picks) == _BCI_IV_2A_GDF_LABELS:
        raw.rename_channels(dict(zip(picks, BCI_IV_2A_CHANNELS, strict=True)))
        picks = list(BCI_IV_2A_CHANNELS)
        notes.append("renamed the BCI IV 2a GDF channels EEG-Fz, EEG-0 ... EEG-16 to 10-20 names")
    if channels is not None:
        picks = _select_channels(raw, picks, list(channels), where)
    return raw.pick(picks)


def _check_finite(values: np.ndarray, ch_names: list[str], where: str) -> None:
    """An :class:`InputFileError` naming the channels when ``values`` (channels on axis -2)
    hold NaN or infinite samples."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    per_channel = bad.any(axis=-1)
    if per_channel.ndim > 1:
        per_channel = per_channel.any(axis=tuple(range(per_channel.ndim - 1)))
    names = [ch_names[i] for i in np.flatnonzero(per_channel)]
    raise InputFileError(
        f"the recording contains {int(bad.sum())} NaN or infinite samples "
        f"(channels {', '.join(names[:10])}{' ...' if len(names) > 10 else ''})",
        path=where,
        fix="interpolate or remove the bad segments or channels (e.g. with MNE) and save "
        "the recording again, or leave those channels out with the channel selection "
        "(`channels=`, --channels)",
    )


def _resample(raw: mne.io.BaseRaw, resample: float | None, notes: list[str]) -> None:
    """Resample ``raw`` in place when ``resample`` differs from its rate."""
    sfreq = float(raw.info["sfreq"])
    if resample is None or abs(float(resample) - sfreq) <= 1e-6:
        return
    if not float(resample) > 0:
        raise ConfigError(f"resampling rate must be positive, got {resample}",
                          fix="give a rate in Hz, e.g. 250")
    raw.resample(float(resample), verbose="error")
    notes.append(f"resampled from {sfreq:g} Hz to {float(resample):g} Hz")


def _epoch(
    raw: mne.io.BaseRaw,
    samples: np.ndarray,
    tmin: float,
    tmax: float,
    where: str,
    notes: list[str],
) -> tuple[np.ndarray, np.ndarray]:
    """One :class:`mne.Epochs` window ``[tmin, tmax)`` s around each cue sample.

    MNE's ``tmax`` is inclusive, so it is set to the last sample of the end-exclusive window:
    a window holds ``round((tmax - tmin) * sfreq)`` samples, starting ``round(tmin * sfreq)``
    samples after the cue.

    Returns
    -------
    data : numpy.ndarray
        ``(n_kept, n_channels, n_times)`` float32 microvolts.
    kept : numpy.ndarray
        Indices into ``samples`` of the windows MNE kept (``Epochs.selection``).
    """
    sfreq = float(raw.info["sfreq"])
    first = int(round(tmin * sfreq))
    n_times = _n_times(tmin, tmax, sfreq)
    events = np.column_stack([samples, np.zeros_like(samples), np.ones_like(samples)])
    epochs = mne.Epochs(raw, events, {"cue": 1}, tmin=first / sfreq,
                        tmax=(first + n_times - 1) / sfreq, baseline=None, preload=True,
                        reject_by_annotation=True, event_repeated="drop", proj=False,
                        verbose="error")
    kept = np.asarray(epochs.selection, dtype=np.int64)
    _note_drops(epochs.drop_log, tmin, tmax, raw.n_times / sfreq, where, notes)
    data = epochs.get_data(copy=False)
    if data.shape[-1] != n_times:  # MNE rounds tmin/tmax to samples; guard the contract
        raise RuntimeError(f"MNE returned {data.shape[-1]} samples per epoch, expected {n_times}")
    return (data * 1e6).astype(np.float32), kept


_OUTSIDE = ("NO_DATA", "TOO_SHORT")
"""MNE drop-log reasons of a window that extends beyond the recording."""


def _note_drops(
    drop_log: tuple[tuple[str, ...], ...],
    tmin: float,
    tmax: float,
    duration: float | None,
    where: str,
    notes: list[str],
) -> None:
    """Say in ``notes`` how many windows MNE dropped and why (its drop log); an
    :class:`InputFileError` when it dropped them all."""
    n = len(drop_log)
    dropped = [reasons for reasons in drop_log if reasons]
    if len(dropped) == n:
        outside = all(set(r) & set(_OUTSIDE) for r in dropped)
        raise InputFileError(
            f"all {n} trial windows [{tmin:g}, {tmax:g}) s around the cues "
            + ("fall (partly) outside the recording " if outside else "were dropped by MNE ")
            + ("(" if duration is None else f"({duration:.1f} s long; ")
            + f"MNE drop log: {_reasons(dropped)})",
            path=where,
            fix="choose tmin and tmax within the recording (check the window against the "
            "dataset's trial timing)" + ("" if outside else ", or remove the BAD annotations "
                                         "that cover the trials"),
        )
    outside = [r for r in dropped if set(r) & set(_OUTSIDE)]
    if outside:
        notes.append(f"dropped {len(outside)} of {n} trials whose window [{tmin:g}, {tmax:g}) s "
                     f"extends beyond the recording (MNE drop log: {_reasons(outside)})")
    others = [r for r in dropped if not set(r) & set(_OUTSIDE)]
    if others:
        notes.append(f"dropped {len(others)} of {n} trials by MNE's drop log: "
                     f"{_reasons(others)} (a window overlapping a BAD annotation, e.g. the "
                     "boundary between two concatenated runs, or a repeated cue)")


def _reasons(dropped: list[tuple[str, ...]]) -> str:
    counts = Counter(reason for reasons in dropped for reason in reasons)
    return ", ".join(f"{reason} x{k}" for reason, k in counts.items())


def _eeg_channels(raw: mne.io.BaseRaw, where: str, notes: list[str]) -> list[str]:
    types = raw.get_channel_types()
    keep: list[str] = []
    by_type: dict[str, list[str]] = {}
    eog_named: list[str] = []
    for name, kind in zip(raw.ch_names, types, strict=True):
        if kind != "eeg":
            by_type.setdefault(kind, []).append(name)
        elif any(tag in name.upper() for tag in _NON_EEG_NAMES):
            eog_named.append(name)
        else:
            keep.append(name)
    if by_type:
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_type.items()))
        notes.append(f"dropped {sum(map(len, by_type.values()))} non-EEG channels ({listed})")
    if eog_named:
        notes.append(
            f"dropped {len(eog_named)} channels typed EEG but named EOG/ECG/EMG "
            f"({', '.join(eog_named)})"
        )
    if not keep:
        raise InputFileError(
            f"the recording has no EEG channels (channel types: {', '.join(sorted(set(types)))})",
            path=where,
            fix="check the file; EEG channels must be typed 'eeg'",
        )
    return keep


def _select_channels(
    raw: mne.io.BaseRaw, eeg: list[str], wanted: list[str], where: str
) -> list[str]:
    if not wanted:
        raise ConfigError("the channel selection is empty", fix="name at least one channel")
    dupes = [name for name, n in Counter(wanted).items() if n > 1]
    if dupes:
        raise ConfigError(f"channels listed twice: {', '.join(dupes)}",
                          fix="name each channel once")
    missing = [name for name in wanted if name not in eeg]
    if missing:
        lower = {name.lower(): name for name in eeg}
        hints = [f"{m} (did you mean {lower[m.lower()]}?)" if m.lower() in lower else m
                 for m in missing]
        not_eeg = [m for m in missing if m in raw.ch_names]
        extra = f"; {', '.join(not_eeg)} not typed EEG" if not_eeg else ""
        raise InputFileError(
            f"channels not found among the recording's EEG channels: {', '.join(hints)}{extra}",
            path=where,
            fix=f"choose from the EEG channels present: {', '.join(eeg)}",
        )
    return wanted


def _filter(
    raw: mne.io.BaseRaw,
    l_freq: float | None,
    h_freq: float | None,
    notch: float | None,
    notes: list[str],
) -> None:
    sfreq = float(raw.info["sfreq"])
    nyquist = sfreq / 2.0
    for name, value in (("l_freq", l_freq), ("h_freq", h_freq), ("notch", notch)):
        if value is not None and not 0 < float(value) < nyquist:
            raise ConfigError(
                f"{name}={value} Hz is outside (0, {nyquist:g}) Hz for data at {sfreq:g} Hz",
                fix="choose a frequency below half the sampling rate, or resample less",
            )
    if l_freq is not None and h_freq is not None and float(l_freq) >= float(h_freq):
        raise ConfigError(f"band-pass {l_freq}-{h_freq} Hz is empty",
                          fix="choose l_freq below h_freq")
    if notch is not None:
        freqs = np.arange(float(notch), nyquist, float(notch))
        raw.notch_filter(freqs, verbose="error")
        notes.append(f"notch filtered at {', '.join(f'{f:g}' for f in freqs)} Hz")
    if l_freq is not None or h_freq is not None:
        raw.filter(l_freq, h_freq, verbose="error")
        lo = "" if l_freq is None else f"{float(l_freq):g}"
        hi = "" if h_freq is None else f"{float(h_freq):g}"
        notes.append(f"band-pass filtered {lo}-{hi} Hz (MNE FIR, zero phase)")


def _cues(
    raw: mne.io.BaseRaw,
    mapping: dict[str, list[str]],
    labels_file: PathLike | None,
    where: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Cue samples (MNE sample numbers, ``first_samp`` included) and labels, in time order."""
    classes = [name for name in mapping if name != UNKNOWN_CLASS]
    descriptions = list(dict.fromkeys(str(d) for d in raw.annotations.description))
    event_id: dict[str, int] = {}
    for desc in descriptions:
        hits = [name for name, codes in mapping.items() if any(match_code(desc, c) for c in codes)]
        if len(hits) > 1:
            raise ConfigError(f"annotation {desc!r} matches the classes {', '.join(hits)}",
                              fix="give each event code to one class only")
        if hits:
            label = classes.index(hits[0]) if hits[0] != UNKNOWN_CLASS else -1
            event_id[desc] = label + 2  # event values must be positive; -1 -> 1, class k -> k+2
        elif labels_file is not None and match_code(desc, CUE_UNKNOWN_CODE):
            event_id[desc] = 1
    if not event_id:
        counts = Counter(str(d) for d in raw.annotations.description)
        found = ", ".join(f"{d!r} ({n}x)" for d, n in list(counts.items())[:30])
        if len(counts) > 30:
            found += f", ... ({len(counts)} distinct)"
        wanted = ", ".join(f"{k}={'|'.join(v)}" for k, v in mapping.items())
        raise InputFileError(
            f"no annotation matches the event mapping {wanted}; annotations found: "
            f"{found or 'none'}",
            path=where,
            fix="give the codes used in this file, e.g. --events 'left=769,right=770' "
            "(BCI IV 2a) or 'left=T1,right=T2' (PhysioNet); evaluation sessions with code "
            "783 need their labels file",
        )
    events, _ = mne.events_from_annotations(raw, event_id=event_id, verbose="error")
    order = np.argsort(events[:, 0], kind="stable")
    events = events[order]
    labels = events[:, 2].astype(np.int64) - 2
    if labels_file is not None:
        labels = _labels_from_mat(labels_file, len(events), len(classes))
    return events[:, 0].astype(np.int64), labels


def _labels_from_mat(path: PathLike, n_cues: int, n_classes: int) -> np.ndarray:
    import scipy.io

    path = Path(path)
    if not path.is_file():
        raise InputFileError("labels file not found", path=path,
                             fix="give the MATLAB file with 'classlabel' (e.g. A01E.mat)")
    try:
        content = scipy.io.loadmat(path)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad input file
        raise InputFileError(f"cannot read the labels file: {exc}", path=path,
                             fix="give a MATLAB (.mat, v5) file with a 'classlabel' vector"
                             ) from exc
    if "classlabel" not in content:
        keys = ", ".join(k for k in content if not k.startswith("__")) or "none"
        raise InputFileError(f"no 'classlabel' variable in the labels file (variables: {keys})",
                             path=path, fix="give the file with 'classlabel' (e.g. A01E.mat)")
    values = np.asarray(content["classlabel"]).reshape(-1)
    if values.size != n_cues:
        raise InputFileError(
            f"the labels file has {values.size} labels but the recording has {n_cues} cues",
            path=path,
            fix="give the labels file of this recording (same subject and session)",
        )
    if values.size and (not np.all(np.isfinite(values)) or values.min() < 1
                        or values.max() > n_classes or np.any(values != np.round(values))):
        raise InputFileError(
            f"'classlabel' must hold integers 1..{n_classes} (one per class of the event "
            f"mapping), found {sorted(set(np.unique(values).tolist()))[:10]}",
            path=path,
            fix="list all classes of the labels file in the event mapping, in its order",
        )
    return values.astype(np.int64) - 1


# -- MOABB -----------------------------------------------------------------------------------------
def _mne_data_folder() -> Path:
    folder = mne.get_config("MNE_DATA")
    return Path(folder).expanduser() if folder else Path("~/mne_data").expanduser()


def _dataset_class_name(dataset_id: str) -> str:
    key = _norm(dataset_id).replace("_", "").replace("-", "").lower()
    for name in MOABB_DATASETS:
        if name.replace("_", "").lower() == key:
            return name
    raise ConfigError(
        f"unknown MOABB dataset {dataset_id!r}",
        fix=f"use one of {', '.join(MOABB_DATASETS)} (or {FAKE_DATASET} to try the MOABB "
        "path offline), or read local files instead",
    )


def load_moabb(
    dataset_id: str,
    *,
    subjects: Sequence[int] | None = None,
    sessions: Sequence[str] | None = None,
    events: EventsArg | None = None,
    tmin: float | None = None,
    tmax: float | None = None,
    l_freq: float | None = 8.0,
    h_freq: float | None = 32.0,
    resample: float | None = None,
    notch: float | None = None,
    channels: Sequence[str] | None = None,
    dataset: Any = None,
) -> list[EEGTrials]:
    """Load a MOABB dataset as one :class:`EEGTrials` per subject and session.

    The trials are MOABB's own: its ``MotorImagery`` paradigm (Jayaram & Barachant 2018) with
    the classes of ``events``, the band ``l_freq``-``h_freq`` (MOABB's IIR band-pass of each
    run), the window ``tmin``-``tmax`` counted from the start of the dataset's task
    ``interval`` (e.g. 2 s after the trial start in BNCI2014_001, which is the cue) and
    ``resample`` -- the arrays of ``paradigm.get_data(dataset)`` in microvolts. Two things are
    ours: the window is end-exclusive like that of :func:`read_trials` (MOABB's ``tmax`` is
    inclusive, so its last sample is left out: ``[0, 4)`` s at 250 Hz is 1000 samples), and the
    channels (EEG channels named EOG/ECG/EMG dropped, ``channels`` picked in order, with the
    errors of :func:`read_trials`). The runs of a session are joined; ``onsets`` are cue
    times in seconds from the start of the cue's run.

    Parameters
    ----------
    dataset_id : str
        One of :data:`MOABB_DATASETS` or :data:`FAKE_DATASET` (case and underscores ignored);
        with ``dataset`` given, only a name for ``source``.
    subjects : sequence of int, optional
        Subject numbers (default: all of the dataset).
    sessions : sequence of str, optional
        Session names to keep, as MOABB names them (e.g. ``"0train"``, ``"1test"``); default
        all.
    events : str or mapping, optional
        Classes to keep, by MOABB event name (``"left=left_hand,right=right_hand"``) or its
        integer code; default all of ``dataset.event_id`` in its order.
    tmin, tmax : float, optional
        Window relative to the start of the task interval; default ``0`` and the interval's
        length (so BNCI2014_001's [2, 6] s gives 4 s = 1000 samples at 250 Hz).
    l_freq, h_freq, resample, channels
        As in :func:`read_trials` (the filter is MOABB's, see above).
    notch : None
        Not part of MOABB's paradigm: anything but ``None`` is a :class:`ConfigError`.
    dataset : moabb.datasets.base.BaseDataset, optional
        A dataset object to use instead of ``dataset_id`` (e.g. MOABB's ``FakeDataset``).

    Returns
    -------
    list of EEGTrials
        Ordered by subject then session; ``source`` is ``"moabb:<dataset_id>"``; the notes
        say what the paradigm did and which trials MNE dropped (its drop log).

    Raises
    ------
    ConfigError
        Unknown dataset id, subject, session or event, malformed event mapping, a notch.
    InputFileError
        If the data are neither in the MNE data folder nor downloadable (path: that folder).
    """
    dataset, dataset_id = _moabb_dataset(dataset_id, dataset)
    source = f"moabb:{dataset_id}"
    chosen = _moabb_subjects(dataset, dataset_id, subjects)
    mapping = _moabb_mapping(dataset, dataset_id, events)
    interval = [float(x) for x in dataset.interval]
    tmin, tmax = _check_window(0.0 if tmin is None else tmin,
                               interval[1] - interval[0] if tmax is None else tmax)
    if notch is not None:
        raise ConfigError(
            f"a notch filter ({notch} Hz) is not part of MOABB's MotorImagery paradigm",
            fix="leave out the notch for MOABB datasets (the band-pass already stops the line "
            "frequency when h_freq is below it), or read the recordings as files",
        )
    if resample is not None and not float(resample) > 0:
        raise ConfigError(f"resampling rate must be positive, got {resample}",
                          fix="give a rate in Hz, e.g. 250")
    from moabb.paradigms import MotorImagery

    names = [name for codes in mapping.values() for name in codes]
    paradigm = MotorImagery(events=names, n_classes=len(names), fmin=l_freq, fmax=h_freq,
                            tmin=tmin, tmax=tmax, resample=None)
    runs = _moabb_runs(dataset, dataset_id, paradigm, chosen)
    wanted = _moabb_sessions(runs, sessions, dataset_id)
    out: list[EEGTrials] = []
    for subject in chosen:
        for session, by_run in runs[subject].items():
            epochs = [ep for ep in by_run.values() if ep is not None]
            if str(session) not in wanted or not epochs:
                continue
            trials = _session_trials(
                epochs, mapping, dataset, tmin=tmin, tmax=tmax, band=(l_freq, h_freq),
                resample=resample, channels=channels, where=source)
            trials.subject, trials.session = str(subject), str(session)
            out.append(trials)
    return out


def _moabb_dataset(dataset_id: str, dataset: Any) -> tuple[Any, str]:
    """The dataset object and its id (``FakeDataset`` made offline, others by class name)."""
    if dataset is not None:
        return dataset, dataset_id
    if _norm(dataset_id).lower() == FAKE_DATASET.lower():
        from moabb.datasets.fake import FakeDataset

        # random noise, made offline: for trying the MOABB path end to end, not for accuracy
        return FakeDataset(event_list=("left_hand", "right_hand"), n_sessions=2, n_runs=1,
                           n_subjects=3, paradigm="imagery", seed=0), FAKE_DATASET
    name = _dataset_class_name(dataset_id)
    import moabb.datasets

    return getattr(moabb.datasets, name)(), name


def _moabb_subjects(dataset: Any, dataset_id: str, subjects: Sequence[int] | None) -> list[int]:
    valid = list(dataset.subject_list)
    chosen = valid if subjects is None else [int(s) for s in subjects]
    bad = [s for s in chosen if s not in valid]
    if bad or not chosen:
        raise ConfigError(
            f"subjects {bad or '[]'} are not in {dataset_id} (subjects {valid[0]}..{valid[-1]})",
            fix=f"choose subjects between {valid[0]} and {valid[-1]}",
        )
    return chosen


def _moabb_mapping(dataset: Any, dataset_id: str, events: EventsArg | None
                   ) -> dict[str, list[str]]:
    """Class name to MOABB event names (integer codes of the dataset translated)."""
    event_id = dict(dataset.event_id)
    if events is None:
        return {name: [name] for name in event_id}
    by_code = {str(v): k for k, v in event_id.items() if not isinstance(v, list)}
    mapping = {cls: [by_code.get(c, c) for c in codes]
               for cls, codes in _as_mapping(events).items()}
    unknown = [c for codes in mapping.values() for c in codes if c not in event_id]
    if unknown:
        raise ConfigError(
            f"events {', '.join(map(repr, unknown))} are not in {dataset_id} (its events: "
            f"{', '.join(f'{k}={v}' for k, v in event_id.items())})",
            fix="name the dataset's events or their codes, e.g. "
            "'left=left_hand,right=right_hand'",
        )
    return mapping


def _moabb_runs(dataset: Any, dataset_id: str, paradigm: Any, subjects: list[int]) -> dict:
    """``{subject: {session: {run: mne.Epochs or None}}}`` from the paradigm's own process
    pipeline (what ``paradigm.get_data`` concatenates); download failures become one
    :class:`InputFileError` naming the MNE data folder."""
    if not paradigm.is_valid(dataset):
        raise ConfigError(f"{dataset_id} is not a motor-imagery dataset with these events",
                          fix="choose a motor-imagery dataset and events it has")
    folder = _mne_data_folder()
    try:
        pipeline = paradigm.make_process_pipelines(dataset, return_epochs=True)[0]
        return dataset.get_data(subjects=subjects, process_pipeline=pipeline)
    except (ConfigError, InputFileError):
        raise
    except Exception as exc:  # noqa: BLE001 - download/parse failures become one clear error
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise InputFileError(
            f"cannot load MOABB dataset {dataset_id} (subjects {subjects}) from the MNE data "
            f"folder or download it: {type(exc).__name__}: {message}",
            path=folder,
            fix=f"on a machine with internet run `python -c \"import moabb.datasets as d; "
            f"d.{dataset_id}().download()\"` and copy the MNE data folder here (or set "
            "MNE_DATA to it), or read local recordings with read_trials / --data",
        ) from exc


def _moabb_sessions(runs: dict, sessions: Sequence[str] | None, dataset_id: str) -> set[str]:
    """The session names to keep (all when ``sessions`` is None); unknown names are a
    :class:`ConfigError` listing the dataset's sessions."""
    present = list(dict.fromkeys(str(s) for by_session in runs.values() for s in by_session))
    if sessions is None:
        return set(present)
    wanted = [str(s).strip() for s in sessions]
    unknown = [s for s in wanted if s not in present]
    if unknown or not wanted:
        raise ConfigError(
            f"sessions {unknown or '[]'} are not in {dataset_id} (sessions: "
            f"{', '.join(present)})",
            fix=f"choose among {', '.join(present)}, or leave out the session filter for all",
        )
    return set(wanted)


def _session_trials(
    epochs: list[mne.BaseEpochs],
    mapping: dict[str, list[str]],
    dataset: Any,
    *,
    tmin: float,
    tmax: float,
    band: tuple[float | None, float | None],
    resample: float | None,
    channels: Sequence[str] | None,
    where: str,
) -> EEGTrials:
    """One :class:`EEGTrials` from the paradigm's epochs of the runs of one session."""
    notes: list[str] = []
    picks = _eeg_channels(epochs[0], where, notes)
    if channels is not None:
        picks = _select_channels(epochs[0], picks, list(channels), where)
    classes = [name for name in mapping if name != UNKNOWN_CLASS]
    label_of = {code: (classes.index(name) if name != UNKNOWN_CLASS else -1)
                for name, codes in mapping.items() for code in codes}
    event_names = {int(value): name for name, values in dataset.event_id.items()
                   for value in (values if isinstance(values, list) else [values])}
    data, labels, onsets, drop_log = [], [], [], []
    for ep in epochs:
        ep = ep.copy().pick(picks)
        onsets.append(ep.events[:, 0] / float(ep.info["sfreq"]) + float(dataset.interval[0]))
        labels.append(np.array([label_of[event_names[v]] for v in ep.events[:, 2]], dtype=np.int64))
        drop_log += [r for r in ep.drop_log if r != ("IGNORED",)]
        if resample is not None and abs(float(resample) - ep.info["sfreq"]) > 1e-6:
            ep.resample(float(resample), verbose=False)  # MOABB's step, after epoching
        data.append(ep.get_data() * dataset.unit_factor)
    sfreq = float(ep.info["sfreq"])
    n_times = _n_times(tmin, tmax, sfreq)
    values = np.concatenate(data)
    if values.shape[-1] < n_times:  # MOABB's tmax is inclusive: one sample more, never less
        raise RuntimeError(f"MOABB returned {values.shape[-1]} samples per epoch, expected "
                           f"at least {n_times}")
    values = values[..., :n_times]
    _check_finite(values, list(ep.ch_names), where)
    _moabb_notes(notes, n_runs=len(epochs), band=band, sfreq=sfreq, resample=resample,
                 raw_sfreq=float(epochs[0].info["sfreq"]))
    _note_drops(tuple(drop_log), tmin, tmax, None, where, notes)
    return EEGTrials(data=values.astype(np.float32), labels=np.concatenate(labels),
                     classes=classes, ch_names=list(ep.ch_names), sfreq=sfreq,
                     onsets=np.concatenate(onsets).astype(np.float64), source=where,
                     notes=notes)


def _moabb_notes(notes: list[str], *, n_runs: int, band: tuple[float | None, float | None],
                 sfreq: float, resample: float | None, raw_sfreq: float) -> None:
    """Say what MOABB's paradigm did (band-pass, resampling) and how many runs were joined."""
    if n_runs > 1:
        notes.insert(0, f"concatenated the trials of {n_runs} runs")
    if band[0] is not None or band[1] is not None:
        lo, hi = ("" if f is None else f"{float(f):g}" for f in band)
        notes.append(f"band-pass filtered {lo}-{hi} Hz by MOABB's MotorImagery paradigm "
                     "(IIR, each run on its own)")
    if abs(raw_sfreq - sfreq) > 1e-6:
        notes.append(f"resampled from {raw_sfreq:g} Hz to {sfreq:g} Hz (after epoching, as "
                     "MOABB does)")

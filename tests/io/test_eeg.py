"""Tests of medcl.io.eeg: EEG files and MOABB datasets to trials.

Every recording is written by the test itself (noise with cues, exported with MNE), so the
tests run offline and import no app; MOABB is exercised through its ``FakeDataset``. Oracles:
our trials equal ``mne.Epochs(...).get_data()`` on two runs joined by ``concatenate_raws``, and
the MOABB path equals ``MotorImagery(...).get_data`` on ``FakeDataset``.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np
import pytest
import scipy.io

from medcl.io.eeg import (
    BCI_IV_2A_CHANNELS,
    MOABB_DATASETS,
    EEGTrials,
    load_moabb,
    match_code,
    parse_events,
    read_raw,
    read_trials,
    trials_from_raw,
)
from medcl.io.errors import ConfigError, InputFileError

N_PER_CLASS = 6
MONTAGE_22 = list(BCI_IV_2A_CHANNELS)


def _recording(n_per_class: int = N_PER_CLASS, *, seed: int = 3, sfreq: float = 250.0,
               lead_s: float = 2.0, every_s: float = 6.0) -> mne.io.RawArray:
    """22 EEG channels of 10 uV white noise plus a 10 Hz rhythm (volts), one cue annotation
    ("769" left / "770" right, 4 s long, random order) every ``every_s`` seconds after
    ``lead_s`` seconds, and ``every_s`` seconds after the last cue."""
    rng = np.random.default_rng(seed)
    codes = rng.permutation(np.repeat(["769", "770"], n_per_class))
    onsets = lead_s + every_s * np.arange(len(codes))
    n = int(round((onsets[-1] + every_s) * sfreq))
    t = np.arange(n) / sfreq
    data = rng.normal(0.0, 10.0, (len(MONTAGE_22), n)) + 5.0 * np.sin(2 * np.pi * 10.0 * t)
    raw = mne.io.RawArray(data * 1e-6, mne.create_info(MONTAGE_22, sfreq, "eeg"),
                          verbose="error")
    raw.set_meas_date(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    raw.set_annotations(mne.Annotations(onsets, np.full(len(codes), 4.0), list(codes)))
    return raw


@pytest.fixture(scope="module")
def sim() -> mne.io.RawArray:
    return _recording()


def _save_fif(raw: mne.io.BaseRaw, path: Path) -> Path:
    raw.save(path, overwrite=True, verbose="error")
    return path


def _save_eeglab(raw: mne.io.BaseRaw, path: Path) -> Path:
    """An EEGLAB .set (MATLAB v5, data inside) written field by field, as EEGLAB saves it:
    microvolts, channel labels in ``chanlocs``, events with 1-based sample latencies."""
    sf = raw.info["sfreq"]
    data = raw.get_data() * 1e6
    chanlocs = np.array([(n,) for n in raw.ch_names], dtype=[("labels", object)])
    events = np.array(
        [(str(d), float(o * sf + 1), 0.0)
         for o, d in zip(raw.annotations.onset, raw.annotations.description, strict=True)],
        dtype=[("type", object), ("latency", float), ("duration", float)])
    eeg = {"setname": path.stem, "nbchan": float(data.shape[0]), "trials": 1.0,
           "pnts": float(data.shape[1]), "srate": sf, "xmin": 0.0,
           "xmax": (data.shape[1] - 1) / sf, "data": data.astype(np.float32),
           "chanlocs": chanlocs, "event": events, "icawinv": np.array([]),
           "icasphere": np.array([]), "icaweights": np.array([]), "ref": "common"}
    scipy.io.savemat(path, {"EEG": eeg}, appendmat=False)
    return path


def _export(raw: mne.io.BaseRaw, path: Path) -> Path:
    if path.suffix == ".fif":
        return _save_fif(raw, path)
    if path.suffix == ".set":
        return _save_eeglab(raw, path)
    mne.export.export_raw(path, raw, overwrite=True, verbose="error")
    return path


def _cues(raw: mne.io.BaseRaw) -> list[tuple[float, str]]:
    return [(float(a["onset"]), str(a["description"])) for a in raw.annotations]


# -- event mappings --------------------------------------------------------------------------------
def test_parse_events_keeps_order_and_codes() -> None:
    assert parse_events("right=770,left=769") == {"right": ["770"], "left": ["769"]}
    assert list(parse_events("right=770,left=769")) == ["right", "left"]
    assert parse_events(" left = 769 | T1 , right=T2") == {"left": ["769", "T1"], "right": ["T2"]}


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("left769", "'left769'"),
        ("left=769,right", "'right'"),
        ("left=", "'left='"),
        ("=769", "'=769'"),
        ("left=769||T1", "'left=769||T1'"),
        ("left=769,,right=770", "empty entry"),
        ("left=1,left=2", "'left' appears twice"),
        ("left=1,right=1", "'1'"),
        ("", "empty"),
    ],
)
def test_parse_events_names_the_bad_part(text: str, bad: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_events(text)
    assert bad in str(info.value)
    assert "Fix:" in str(info.value)


def test_match_code_brainvision_and_spaces() -> None:
    assert match_code("769", "769")
    assert match_code("Comment/769", "769")
    assert match_code("Stimulus/S  1", "S1")
    assert match_code("Stimulus/S  1", "S  1")
    assert match_code("T1", "T1")
    assert not match_code("Stimulus/S 11", "S1")
    assert not match_code("7690", "769")
    assert not match_code("Comment/1769", "769")
    assert not match_code("769", "69")
    assert not match_code("Response/R  1", "1")


def test_numeric_codes_match_brainvision_stimulus_markers(sim: mne.io.RawArray) -> None:
    assert match_code("Stimulus/S  1", "1") and match_code("Stimulus/S 12", "12")
    assert not match_code("Stimulus/S 11", "1") and not match_code("Response/R  1", "1")
    raw = sim.copy()
    desc = ["Stimulus/S  1" if d == "769" else "Stimulus/S  2" for d in raw.annotations.description]
    onsets = list(raw.annotations.onset)
    # response markers with the same numbers half a second later are not cues
    raw.set_annotations(mne.Annotations(
        onsets + [o + 0.5 for o in onsets], [0.0] * 2 * len(onsets),
        desc + [d.replace("Stimulus/S", "Response/R") for d in desc]))
    trials = trials_from_raw(raw, "left=1,right=2", source="memory")
    assert trials.class_counts() == {"left": N_PER_CLASS, "right": N_PER_CLASS}


def test_stimulus_markers_match_in_a_recording(sim: mne.io.RawArray) -> None:
    raw = sim.copy()
    desc = ["Stimulus/S  1" if d == "769" else "Stimulus/S  2" for d in raw.annotations.description]
    raw.set_annotations(mne.Annotations(raw.annotations.onset, raw.annotations.duration, desc))
    trials = trials_from_raw(raw, "left=S1,right=S2", source="memory")
    assert trials.class_counts() == {"left": N_PER_CLASS, "right": N_PER_CLASS}


# -- round trips through files --------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".edf", ".fif", ".vhdr", ".set"])
def test_round_trip(tmp_path: Path, sim: mne.io.RawArray, suffix: str) -> None:
    name = "rec_raw.fif" if suffix == ".fif" else f"rec{suffix}"
    path = _export(sim, tmp_path / name)
    if suffix == ".vhdr":  # BrainVision markers come back as "Comment/769"
        assert {str(d) for d in read_raw(path).annotations.description} >= {"Comment/769"}

    trials = read_trials(path, "right=770,left=769", tmin=0.0, tmax=4.0)
    assert isinstance(trials, EEGTrials)
    assert trials.data.shape == (2 * N_PER_CLASS, 22, 1000)
    assert trials.data.dtype == np.float32 and trials.labels.dtype == np.int64
    assert trials.sfreq == 250.0
    assert trials.ch_names == MONTAGE_22
    assert trials.classes == ["right", "left"]  # mapping order is label order
    assert trials.class_counts() == {"right": N_PER_CLASS, "left": N_PER_CLASS}
    truth = _cues(sim)
    assert np.allclose(trials.onsets, [t for t, _ in truth], atol=1e-3)
    assert [trials.classes[k] for k in trials.labels] == [
        "left" if d == "769" else "right" for _, d in truth
    ]
    assert 1.0 < float(trials.data.std()) < 100.0  # microvolts, not volts
    assert trials.subject == "rec_raw" if suffix == ".fif" else "rec"
    assert trials.source == str(path)
    assert any("band-pass filtered 8-32 Hz" in n for n in trials.notes)


def test_window_is_end_exclusive_and_unfiltered_data_is_exact(
    tmp_path: Path, sim: mne.io.RawArray
) -> None:
    path = _save_fif(sim, tmp_path / "rec_raw.fif")
    trials = read_trials(path, "left=769,right=770", tmin=-0.5, tmax=1.0, l_freq=None,
                         h_freq=None)
    assert trials.data.shape[2] == 375
    first = int(round(sim.annotations.onset[0] * 250)) - 125
    expected = sim.get_data()[:, first : first + 375] * 1e6
    np.testing.assert_allclose(trials.data[0], expected, rtol=1e-5, atol=1e-4)
    assert not any("filtered" in n for n in trials.notes)


def test_raw_is_not_modified(sim: mne.io.RawArray) -> None:
    before = sim.get_data().copy()
    trials_from_raw(sim, "left=769,right=770", resample=125.0, notch=50.0, source="memory")
    np.testing.assert_array_equal(sim.get_data(), before)
    assert sim.info["sfreq"] == 250.0


def test_eog_channels_are_dropped(tmp_path: Path, sim: mne.io.RawArray) -> None:
    raw = sim.copy()
    extra = mne.io.RawArray(
        np.random.default_rng(0).normal(0, 2e-5, (2, raw.n_times)),
        mne.create_info(["EOG-left", "EOG"], raw.info["sfreq"], ["eog", "eeg"]),
        verbose="error",
    )
    raw.add_channels([extra], force_update_info=True)
    for suffix in (".fif", ".edf"):  # EDF loses the channel types: dropped by name
        path = _export(raw, tmp_path / ("rec_raw.fif" if suffix == ".fif" else "rec.edf"))
        trials = read_trials(path, "left=769,right=770")
        assert trials.ch_names == MONTAGE_22, suffix
        assert any("named EOG" in n and "EOG" in n for n in trials.notes), trials.notes
    fif = read_trials(tmp_path / "rec_raw.fif", "left=769,right=770")
    assert any("eog: EOG-left" in n for n in fif.notes)


def test_channels_named_like_eog_ecg_emg_are_dropped(sim: mne.io.RawArray) -> None:
    """BrainVision files type every channel EEG: HEOG, VEOG, ECG, EMG1 go by their names."""
    raw = sim.copy()
    names = ["HEOG", "VEOG", "ECG", "EKG", "EMG1"]
    extra = mne.io.RawArray(np.zeros((len(names), raw.n_times)),
                            mne.create_info(names, raw.info["sfreq"], "eeg"), verbose="error")
    raw.add_channels([extra], force_update_info=True)
    trials = trials_from_raw(raw, "left=769,right=770", source="rec.vhdr")
    assert trials.ch_names == MONTAGE_22
    assert any("named EOG" in n and "HEOG, VEOG, ECG, EKG, EMG1" in n for n in trials.notes)


def test_bci_iv_2a_gdf_channel_names_become_10_20(sim: mne.io.RawArray) -> None:
    """BCI IV 2a GDF files label most channels EEG-0 ... EEG-16 and type EOG as EEG."""
    from medcl.io.eeg import _BCI_IV_2A_GDF_LABELS

    raw = sim.copy().rename_channels(dict(zip(MONTAGE_22, _BCI_IV_2A_GDF_LABELS, strict=True)))
    eog = mne.io.RawArray(
        np.zeros((3, raw.n_times)),
        mne.create_info(["EOG-left", "EOG-central", "EOG-right"], raw.info["sfreq"], "eeg"),
        verbose="error",
    )
    raw.add_channels([eog], force_update_info=True)
    trials = trials_from_raw(raw, "left=769,right=770", channels=["C4", "C3"], source="A01T.gdf")
    assert trials.ch_names == ["C4", "C3"]
    assert any("renamed the BCI IV 2a GDF channels" in n for n in trials.notes)
    assert any("EOG-left, EOG-central, EOG-right" in n for n in trials.notes)


def test_channel_selection_and_missing_channel(tmp_path: Path, sim: mne.io.RawArray) -> None:
    path = _save_fif(sim, tmp_path / "rec_raw.fif")
    trials = read_trials(path, "left=769,right=770", channels=["C4", "Cz", "C3"],
                         l_freq=None, h_freq=None)
    assert trials.ch_names == ["C4", "Cz", "C3"]
    full = read_trials(path, "left=769,right=770", l_freq=None, h_freq=None)
    np.testing.assert_array_equal(trials.data[:, 0], full.data[:, MONTAGE_22.index("C4")])
    with pytest.raises(InputFileError) as info:
        read_trials(path, "left=769,right=770", channels=["C3", "Oz", "c4"])
    message = str(info.value)
    assert "Oz" in message and str(path) in message and "did you mean C4" in message
    assert "C3" not in message.split("Fix:")[0].replace("(did you mean", "")


def test_no_matching_event_lists_descriptions(tmp_path: Path, sim: mne.io.RawArray) -> None:
    path = _save_fif(sim, tmp_path / "rec_raw.fif")
    with pytest.raises(InputFileError) as info:
        read_trials(path, "left=T1,right=T2")
    message = str(info.value)
    assert str(path) in message
    assert f"'769' ({N_PER_CLASS}x)" in message and "'770'" in message


def test_windows_beyond_the_recording(tmp_path: Path, sim: mne.io.RawArray) -> None:
    path = _save_fif(sim, tmp_path / "rec_raw.fif")
    with pytest.raises(InputFileError) as info:
        read_trials(path, "left=769,right=770", tmin=0.0, tmax=10_000.0)
    assert str(path) in str(info.value) and "outside the recording" in str(info.value)

    last = float(sim.annotations.onset[-1])
    cropped = sim.copy().crop(0.0, last + 2.0)  # the last trial's 4 s window no longer fits
    path = _save_fif(cropped, tmp_path / "short_raw.fif")
    trials = read_trials(path, "left=769,right=770")
    assert len(trials) == 2 * N_PER_CLASS - 1
    assert any("dropped 1 of 12 trials" in n for n in trials.notes)


def test_nan_samples_are_refused(tmp_path: Path, sim: mne.io.RawArray) -> None:
    raw = sim.copy()
    raw._data[MONTAGE_22.index("Cz"), 1000:1010] = np.nan
    path = _save_fif(raw, tmp_path / "nan_raw.fif")
    with pytest.raises(InputFileError) as info:
        read_trials(path, "left=769,right=770")
    assert str(path) in str(info.value) and "NaN" in str(info.value) and "Cz" in str(info.value)


def test_unknown_suffix_missing_and_unreadable_files(tmp_path: Path) -> None:
    text = tmp_path / "rec.txt"
    text.write_text("not eeg")
    with pytest.raises(InputFileError) as info:
        read_trials(text, "left=769")
    assert str(text) in str(info.value) and ".gdf" in str(info.value) and ".vhdr" in str(info.value)

    missing = tmp_path / "nope.edf"
    with pytest.raises(InputFileError) as info:
        read_raw(missing)
    assert str(missing) in str(info.value) and "not found" in str(info.value)

    broken = tmp_path / "broken.edf"
    broken.write_bytes(b"0" * 300)
    with pytest.raises(InputFileError) as info:
        read_raw(broken)
    assert str(broken) in str(info.value) and "MNE cannot read" in str(info.value)


def test_bad_event_mapping_fails_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'left769'"):
        read_trials(tmp_path / "does_not_matter.edf", "left769")


def test_resample_and_notch_are_noted(tmp_path: Path, sim: mne.io.RawArray) -> None:
    path = _save_fif(sim, tmp_path / "rec_raw.fif")
    trials = read_trials(path, "left=769,right=770", resample=125.0, notch=50.0)
    assert trials.sfreq == 125.0 and trials.data.shape == (2 * N_PER_CLASS, 22, 500)
    assert any("resampled from 250 Hz to 125 Hz" in n for n in trials.notes)
    assert any("notch" in n for n in trials.notes)
    same = read_trials(path, "left=769,right=770", resample=250.0)
    assert not any("resampled" in n for n in same.notes)
    with pytest.raises(ConfigError, match="h_freq=100"):
        read_trials(path, "left=769,right=770", resample=125.0, h_freq=100.0)


def test_labels_file_for_an_evaluation_session(tmp_path: Path, sim: mne.io.RawArray) -> None:
    truth = np.array([0 if d == "769" else 1 for d in sim.annotations.description])
    raw = sim.copy()  # session E: every cue is 783 (class unknown)
    raw.set_annotations(mne.Annotations(raw.annotations.onset, raw.annotations.duration,
                                        ["783"] * len(truth)))
    path = _save_fif(raw, tmp_path / "A01E_raw.fif")
    mat = tmp_path / "A01E.mat"
    scipy.io.savemat(mat, {"classlabel": (truth + 1).reshape(-1, 1).astype(np.uint8)})

    trials = read_trials(path, "left=769,right=770", labels_file=mat)
    np.testing.assert_array_equal(trials.labels, truth)
    assert trials.classes == ["left", "right"]

    unknown = read_trials(path, "left=769,right=770,unknown=783")
    assert unknown.classes == ["left", "right"] and (unknown.labels == -1).all()

    with pytest.raises(InputFileError, match="'783'"):
        read_trials(path, "left=769,right=770")

    short = tmp_path / "short.mat"
    scipy.io.savemat(short, {"classlabel": (truth[:-2] + 1).reshape(-1, 1)})
    with pytest.raises(InputFileError) as info:
        read_trials(path, "left=769,right=770", labels_file=short)
    assert str(short) in str(info.value) and f"{len(truth) - 2} labels" in str(info.value)

    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"labels": truth + 1})
    with pytest.raises(InputFileError, match="classlabel"):
        read_trials(path, "left=769,right=770", labels_file=other)


def test_select_subsets_trials(sim: mne.io.RawArray) -> None:
    trials = trials_from_raw(sim, "left=769,right=770", source="memory")
    sub = trials.select(trials.labels == 1)
    assert len(sub) == N_PER_CLASS and (sub.labels == 1).all()
    assert sub.data.shape[1:] == trials.data.shape[1:]
    np.testing.assert_array_equal(sub.onsets, trials.onsets[trials.labels == 1])
    two = trials.select([3, 0])
    np.testing.assert_array_equal(two.data[1], trials.data[0])
    assert len(trials.select(slice(0, 4))) == 4
    sub.notes.append("x")
    assert "x" not in trials.notes


# -- oracle: mne.Epochs on two runs joined by concatenate_raws ------------------------------------
def _two_runs(tmin: float, tmax: float) -> tuple[mne.io.BaseRaw, float]:
    """Two recordings joined by ``concatenate_raws`` (a ``BAD boundary`` / ``EDGE boundary``
    pair at the seam) and one more cue whose window ``[tmin, tmax)`` crosses the seam."""
    first, second = _recording(seed=1), _recording(seed=2)
    seam = first.times[-1] + 1.0 / first.info["sfreq"]
    joined = mne.concatenate_raws([first, second], verbose="error")
    assert {"BAD boundary", "EDGE boundary"} <= set(joined.annotations.description)
    crossing = seam - (tmax - tmin) / 2 - tmin  # window centred on the seam
    joined.annotations.append(crossing, 4.0, "770")
    return joined, crossing


@pytest.mark.parametrize("band", [(None, None), (8.0, 32.0)])
def test_trials_equal_mne_epochs_on_joined_runs(band: tuple) -> None:
    tmin, tmax = -0.5, 3.0
    joined, crossing = _two_runs(tmin, tmax)
    trials = trials_from_raw(joined, "left=769,right=770", tmin=tmin, tmax=tmax, l_freq=band[0],
                             h_freq=band[1], source="joined")

    ref = joined.copy()
    if band != (None, None):
        ref.filter(*band, verbose="error")
    events, event_id = mne.events_from_annotations(ref, {"769": 1, "770": 2}, verbose="error")
    sfreq = ref.info["sfreq"]
    epochs = mne.Epochs(ref, events, event_id, tmin=tmin, tmax=tmax - 1 / sfreq, baseline=None,
                        reject_by_annotation=True, preload=True, verbose="error")
    expected = epochs.get_data() * 1e6
    assert expected.shape == (4 * N_PER_CLASS, 22, 875)  # the seam trial is dropped
    assert trials.data.shape == expected.shape
    np.testing.assert_allclose(trials.data, expected, rtol=1e-6, atol=1e-4)
    np.testing.assert_array_equal(trials.labels, epochs.events[:, 2] - 1)
    assert crossing not in set(np.round(trials.onsets, 6))
    assert any("dropped 1 of 25 trials" in n and "BAD boundary" in n for n in trials.notes), \
        trials.notes


def test_window_inside_the_data_but_over_the_seam_is_dropped() -> None:
    """The seam trial is complete in the joined array: only the BAD annotation drops it."""
    tmin, tmax = 0.0, 4.0
    joined, crossing = _two_runs(tmin, tmax)
    start = int(round(crossing * 250))
    assert start + 1000 <= joined.n_times  # the window itself lies inside the data
    trials = trials_from_raw(joined, "right=770", tmin=tmin, tmax=tmax, source="joined")
    assert len(trials) == 2 * N_PER_CLASS
    assert not np.isclose(trials.onsets, crossing).any()


# -- filtering and resampling (of the continuous recording, what production uses) ----------------
def _amplitude(x: np.ndarray, sfreq: float, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) * 2 / x.size
    freqs = np.fft.rfftfreq(x.size, 1 / sfreq)
    return float(spectrum[np.argmin(np.abs(freqs - freq))])


def _sines(sfreq: float, seconds: float, cue: float) -> mne.io.RawArray:
    t = np.arange(int(round(seconds * sfreq))) / sfreq
    signal = 3.0 * np.sin(2 * np.pi * 12 * t) + 5.0 * np.sin(2 * np.pi * 50 * t)
    raw = mne.io.RawArray(np.tile(signal, (3, 1)) * 1e-6,
                          mne.create_info(["C3", "Cz", "C4"], sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([cue], [0.0], ["769"]))
    return raw


def test_bandpass_removes_50hz_keeps_12hz() -> None:
    sfreq = 250.0
    trials = trials_from_raw(_sines(sfreq, 20.0, 8.0), "left=769", tmin=0.0, tmax=4.0,
                             source="memory")
    assert trials.data.shape == (1, 3, 1000) and trials.data.dtype == np.float32
    middle = trials.data[0, 0, 250:750]
    assert _amplitude(middle, sfreq, 12) == pytest.approx(3.0, rel=0.05)
    assert _amplitude(middle, sfreq, 50) < 0.05
    with pytest.raises(ConfigError, match="h_freq=32"):
        trials_from_raw(_sines(60.0, 20.0, 8.0), "left=769", l_freq=8.0, h_freq=32.0,
                        source="memory")


def test_resample_length() -> None:
    trials = trials_from_raw(_sines(1000.0, 10.0, 2.0), "left=769", tmin=0.0, tmax=1.0,
                             l_freq=None, h_freq=None, resample=250.0, source="memory")
    assert trials.data.shape == (1, 3, 250) and trials.data.dtype == np.float32
    odd = trials_from_raw(_sines(512.0, 10.0, 2.0), "left=769", tmin=0.0, tmax=501 / 512,
                          l_freq=None, h_freq=None, resample=128.0, source="memory")
    assert odd.data.shape[-1] == round(501 * 128 / 512) and odd.sfreq == 128.0


# -- MOABB ----------------------------------------------------------------------------------------
def _fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cls: type | None = None):
    from moabb.datasets.fake import FakeDataset

    cls = cls or FakeDataset
    kwargs = dict(event_list=("left_hand", "right_hand"), n_sessions=1, n_runs=2, n_subjects=2,
                  paradigm="imagery", duration=30, n_events=6, sfreq=128, seed=1)
    code = cls(**kwargs).code  # FakeDataset sets an environment variable: keep it in the test
    monkeypatch.setenv(f"MNE_DATASETS_{code.upper()}_PATH", str(tmp_path))
    return cls(**kwargs)


def test_load_moabb_fake_dataset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dataset = _fake(monkeypatch, tmp_path)
    out = load_moabb("FakeDataset", dataset=dataset)
    assert [(t.subject, t.session) for t in out] == [("1", "0"), ("2", "0")]
    for trials in out:
        assert trials.classes == ["left_hand", "right_hand"]
        assert trials.data.shape == (12, 3, 384)  # 2 runs x 6 cues; interval [0, 3] s at 128 Hz
        assert trials.ch_names == ["C3", "Cz", "C4"]
        assert trials.class_counts() == {"left_hand": 6, "right_hand": 6}
        assert trials.source == "moabb:FakeDataset"
        assert "concatenated the trials of 2 runs" in trials.notes
        assert 1.0 < float(trials.data.std()) < 100.0

    by_code = load_moabb("FakeDataset", dataset=dataset, subjects=[2], events="right=2,left=1",
                         tmin=0.5, tmax=1.5, l_freq=None, h_freq=None)
    assert len(by_code) == 1 and by_code[0].classes == ["right", "left"]
    assert by_code[0].data.shape == (12, 3, 128)
    np.testing.assert_array_equal(by_code[0].labels, 1 - out[1].labels)

    with pytest.raises(ConfigError, match=r"\[5\]"):
        load_moabb("FakeDataset", dataset=dataset, subjects=[5])


@pytest.mark.parametrize("resample", [None, 64.0])
def test_load_moabb_equals_the_paradigm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                        resample: float | None) -> None:
    """Oracle: MOABB's own MotorImagery paradigm, its get_data arrays in microvolts (MOABB's
    tmax is inclusive: our end-exclusive window leaves out its last sample)."""
    from moabb.paradigms import MotorImagery

    dataset = _fake(monkeypatch, tmp_path)
    ours = load_moabb("FakeDataset", dataset=dataset, resample=resample)
    paradigm = MotorImagery(events=["left_hand", "right_hand"], n_classes=2, fmin=8, fmax=32,
                            tmin=0.0, tmax=None, resample=resample)
    X, y, meta = paradigm.get_data(dataset, subjects=[1, 2])
    n_times = 384 if resample is None else 192
    assert X.shape[-1] in (n_times, n_times + 1)
    for trials in ours:
        rows = ((meta.subject.astype(str) == trials.subject)
                & (meta.session.astype(str) == trials.session)).to_numpy()
        assert rows.sum() == len(trials) == 12
        np.testing.assert_array_equal(trials.data, X[rows][..., :n_times].astype(np.float32))
        assert [trials.classes[k] for k in trials.labels] == list(y[rows])
        assert trials.sfreq == (128.0 if resample is None else resample)
    assert any("resampled from 128 Hz to 64 Hz" in n for n in ours[0].notes) == bool(resample)


def test_load_moabb_session_filter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNE_DATASETS_FAKEDATASET_PATH", str(tmp_path))
    both = load_moabb("FakeDataset", subjects=[1])
    assert [t.session for t in both] == ["0", "1"]
    second = load_moabb("FakeDataset", subjects=[1], sessions=["1"])
    assert [t.session for t in second] == ["1"]
    np.testing.assert_array_equal(second[0].data, both[1].data)
    with pytest.raises(ConfigError) as info:
        load_moabb("FakeDataset", subjects=[1], sessions=["1test"])
    assert "'1test'" in str(info.value) and "0, 1" in str(info.value)


def test_load_moabb_checks_events_and_notch(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    dataset = _fake(monkeypatch, tmp_path)
    with pytest.raises(ConfigError) as info:
        load_moabb("FakeDataset", dataset=dataset, events="left=feet,right=right_hand")
    assert "'feet'" in str(info.value) and "left_hand=1" in str(info.value)
    with pytest.raises(ConfigError, match="notch"):
        load_moabb("FakeDataset", dataset=dataset, notch=50.0)


def test_load_moabb_without_data_names_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from moabb.datasets.fake import FakeDataset

    class Offline(FakeDataset):
        def _get_single_subject_data(self, subject):
            raise ConnectionError("no route to host")

    dataset = _fake(monkeypatch, tmp_path, Offline)
    monkeypatch.setenv("MNE_DATA", str(tmp_path / "mne_data"))
    with pytest.raises(InputFileError) as info:
        load_moabb("FakeDataset", dataset=dataset, subjects=[1])
    message = str(info.value)
    assert message.startswith(str(tmp_path / "mne_data"))
    assert "no route to host" in message and "download" in message and "local" in message


def test_fake_dataset_by_name_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MNE_DATASETS_FAKEDATASET_PATH", str(tmp_path))
    out = load_moabb("FakeDataset", subjects=[1], resample=None)
    assert [(t.subject, t.session) for t in out] == [("1", "0"), ("1", "1")]
    assert out[0].classes == ["left_hand", "right_hand"] and out[0].ch_names == ["C3", "Cz", "C4"]
    assert out[0].source == "moabb:FakeDataset" and len(out[0]) > 10


def test_unknown_moabb_dataset() -> None:
    with pytest.raises(ConfigError) as info:
        load_moabb("BNCI2099_001")
    for name in MOABB_DATASETS:
        assert name in str(info.value)


def test_importing_medcl_io_does_not_import_mne() -> None:
    code = ("import sys, medcl.io\n"
            "assert 'mne' not in sys.modules and 'medcl.io.eeg' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)

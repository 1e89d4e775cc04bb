"""Tests of mvcnet.simulate: the simulated motor imagery has the physiology it claims."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import welch

from medcl.io.eeg import read_trials, trials_from_raw
from medcl.io.errors import ConfigError
from medcl.mvcnet.simulate import EVENT_CODES, MONTAGE_22, simulate_raw, write_simulated

SFREQ = 250.0


def _mu_ratios(raw, mapping: str) -> dict[str, dict[str, tuple[float, float]]]:
    """Per class and channel: mean 8-12 Hz power (µV²/Hz) at rest before the cue (-2..0 s)
    and during imagery (0.5..4 s after the cue)."""
    trials = trials_from_raw(raw, mapping, tmin=-2.0, tmax=4.0, l_freq=None, h_freq=None,
                             source="memory")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for k, name in enumerate(trials.classes):
        x = trials.data[trials.labels == k]
        out[name] = {}
        for ch in ("C3", "C4", "Cz"):
            sig = x[:, trials.ch_names.index(ch)]
            f, rest = welch(sig[:, : int(2 * SFREQ)], fs=SFREQ, nperseg=int(SFREQ))
            _, imag = welch(sig[:, int(2.5 * SFREQ) :], fs=SFREQ, nperseg=int(SFREQ))
            band = (f >= 8) & (f <= 12)
            out[name][ch] = (float(rest[:, band].mean()), float(imag[:, band].mean()))
    return out


def _ratio(p: tuple[float, float]) -> float:
    return p[1] / p[0]


@pytest.mark.parametrize("subject", [1, 2, 3])
def test_contralateral_erd(subject: int) -> None:
    raw = simulate_raw(subject, n_trials_per_class=30, rest_s=(3.0, 3.5), seed=0)
    power = _mu_ratios(raw, "left=769,right=770")

    left, right = power["left"], power["right"]
    # left hand: mu power drops over the right hemisphere (C4), much more than over C3
    assert left["C4"][1] < left["C4"][0]
    assert _ratio(left["C4"]) < 0.7
    assert _ratio(left["C4"]) < _ratio(left["C3"]) - 0.15
    # right hand: the reverse
    assert right["C3"][1] < right["C3"][0]
    assert _ratio(right["C3"]) < 0.7
    assert _ratio(right["C3"]) < _ratio(right["C4"]) - 0.15


def test_feet_desynchronise_the_midline() -> None:
    raw = simulate_raw(3, n_trials_per_class=25, classes=("feet", "tongue"), rest_s=(3.0, 3.5),
                       seed=1)
    power = _mu_ratios(raw, "feet=771,tongue=772")
    assert _ratio(power["feet"]["Cz"]) < 0.8
    assert _ratio(power["feet"]["Cz"]) < min(_ratio(power["feet"][c]) for c in ("C3", "C4"))
    assert _ratio(power["tongue"]["C3"]) > 1.0 and _ratio(power["tongue"]["C4"]) > 1.0


def test_no_rhythm_no_erd() -> None:
    """With snr = 0 the same measurement finds no lateralised power change."""
    raw = simulate_raw(1, n_trials_per_class=30, snr=0.0, rest_s=(3.0, 3.5), seed=0)
    power = _mu_ratios(raw, "left=769,right=770")
    assert abs(_ratio(power["left"]["C4"]) - _ratio(power["left"]["C3"])) < 0.15
    assert 0.85 < _ratio(power["right"]["C3"]) < 1.2


def test_recording_layout() -> None:
    raw = simulate_raw(2, n_trials_per_class=5, classes=("left", "right", "feet", "tongue"),
                       trial_s=3.0, rest_s=(2.0, 2.0))
    assert raw.ch_names == MONTAGE_22 and set(raw.get_channel_types()) == {"eeg"}
    assert raw.info["sfreq"] == SFREQ
    assert raw.get_montage() is not None
    desc = list(raw.annotations.description)
    assert sorted(desc) == sorted(code for code in EVENT_CODES.values() for _ in range(5))
    assert np.allclose(raw.annotations.duration, 3.0)
    assert np.allclose(np.diff(raw.annotations.onset), 5.0, atol=1.0 / SFREQ)
    std_uv = raw.get_data().std(axis=1) * 1e6
    assert (std_uv > 5).all() and (std_uv < 50).all()  # tens of microvolts, in volts


def test_determinism() -> None:
    a = simulate_raw(1, n_trials_per_class=4, seed=7)
    b = simulate_raw(1, n_trials_per_class=4, seed=7)
    np.testing.assert_array_equal(a.get_data(), b.get_data())
    assert list(a.annotations.description) == list(b.annotations.description)
    np.testing.assert_array_equal(a.annotations.onset, b.annotations.onset)
    for other in (simulate_raw(2, n_trials_per_class=4, seed=7),
                  simulate_raw(1, n_trials_per_class=4, seed=8)):
        n = min(a.n_times, other.n_times)
        assert not np.allclose(a.get_data()[:, :n], other.get_data()[:, :n])


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"classes": ("left", "jump")}, "jump"),
        ({"n_trials_per_class": 0}, "n_trials_per_class"),
        ({"rest_s": (2.0, 1.0)}, "rest_s"),
        ({"snr": -1.0}, "snr"),
    ],
)
def test_bad_settings(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        simulate_raw(1, **kwargs)


@pytest.mark.parametrize(
    ("fmt", "name"),
    [("edf", "sub-01.edf"), ("fif", "sub-01_eeg.fif"), ("brainvision", "sub-01.vhdr")],
)
def test_write_simulated_reads_back(tmp_path: Path, fmt: str, name: str) -> None:
    paths = write_simulated(tmp_path, subjects=2, fmt=fmt, n_trials_per_class=5, seed=2)
    assert [p.name for p in paths] == [name, name.replace("01", "02")]
    expected = {p.name for p in paths}
    if fmt == "brainvision":
        expected |= {p.with_suffix(s).name for p in paths for s in (".vmrk", ".eeg")}
    assert {p.name for p in tmp_path.iterdir()} == expected  # no temporary files left
    for path in paths:
        trials = read_trials(path, "left=769,right=770")
        assert trials.class_counts() == {"left": 5, "right": 5}
        assert trials.data.shape == (10, 22, 1000)

    before = paths[1].stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already exist.*empty --out"):
        write_simulated(tmp_path, subjects=[3, 2], fmt=fmt, n_trials_per_class=5, seed=2)
    assert paths[1].stat().st_mtime_ns == before and not (tmp_path / name.replace("01", "03")
                                                          ).exists()  # nothing written
    again = write_simulated(tmp_path, subjects=[2], fmt=fmt, n_trials_per_class=5, seed=2,
                            overwrite=True)
    assert again == paths[1:]  # overwrite=True replaces the file in place


def test_write_simulated_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'gdf'"):
        write_simulated(tmp_path, subjects=1, fmt="gdf")

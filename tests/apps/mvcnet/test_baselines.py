"""Tests of mvcnet.baselines: CSP+LDA and the braindecode networks trained with the engine."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.mvcnet.baselines import BASELINES, MIN_N_TIMES, build_model, fit_predict


def _variance_classes(
    n: int, c: int = 4, t: int = 250, seed: int = 0, gain: float = 3.0
) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 has large variance on channel 0, class 1 on channel 1 (CSP's textbook case)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.normal(size=(n, c, t))
    X[y == 0, 0] *= gain
    X[y == 1, 1] *= gain
    return (20.0 * X).astype(np.float32), y  # µV-like scale


def test_csp_lda_separates_variance_classes() -> None:
    X, y = _variance_classes(80)
    proba = fit_predict("csp_lda", X[:40], y[:40], X[40:], sfreq=250.0, n_classes=2)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert (proba.argmax(axis=1) == y[40:]).mean() > 0.9


def test_csp_lda_fills_missing_class_columns() -> None:
    X, y = _variance_classes(40, c=3)
    proba = fit_predict("csp_lda", X[:20], y[:20], X[20:], sfreq=250.0, n_classes=3)
    assert proba.shape == (20, 3)
    np.testing.assert_array_equal(proba[:, 2], 0.0)


@pytest.mark.parametrize(
    ("name", "n_chans", "n_times", "sfreq", "n_classes"),
    [
        ("eegnet", 3, 250, 128.0, 2),
        ("shallow", 8, 250, 250.0, 3),
        ("conformer", 4, 256, 128.0, 2),
        ("ifnet", 3, 500, 250.0, 2),
    ],
)
def test_networks_return_probabilities(
    name: str, n_chans: int, n_times: int, sfreq: float, n_classes: int
) -> None:
    rng = np.random.default_rng(1)
    X = (10 * rng.normal(size=(17, n_chans, n_times))).astype(np.float32)
    y = np.arange(12) % n_classes
    proba = fit_predict(
        name, X[:12], y, X[12:], sfreq=sfreq, n_classes=n_classes, epochs=2, batch_size=8
    )
    assert proba.shape == (5, n_classes)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_training_is_seeded_and_learns() -> None:
    X, y = _variance_classes(64, c=3, t=128, seed=2)
    kwargs = {"sfreq": 128.0, "n_classes": 2, "epochs": 15, "batch_size": 16, "lr": 3e-3}
    first = fit_predict("shallow", X[:48], y[:48], X[48:], seed=3, **kwargs)
    again = fit_predict("shallow", X[:48], y[:48], X[48:], seed=3, **kwargs)
    np.testing.assert_allclose(first, again, rtol=1e-5, atol=1e-6)
    assert (first.argmax(axis=1) == y[48:]).mean() >= 0.75
    # one epoch with two seeds: different initial weights and batch order
    short = kwargs | {"epochs": 1}
    a = fit_predict("shallow", X[:48], y[:48], X[48:], seed=4, **short)
    b = fit_predict("shallow", X[:48], y[:48], X[48:], seed=5, **short)
    assert not np.allclose(a, b, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", sorted(MIN_N_TIMES))
def test_minimum_length_is_exact_and_reported(name: str) -> None:
    build_model(name, n_chans=3, n_times=MIN_N_TIMES[name], sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match=f"'{name}' needs trials of at least {MIN_N_TIMES[name]}"):
        build_model(name, n_chans=3, n_times=MIN_N_TIMES[name] - 1, sfreq=250.0, n_classes=2)


def test_bad_inputs() -> None:
    X, y = _variance_classes(10, c=3, t=120)
    with pytest.raises(ValueError, match=r"unknown baseline 'fbcnet'.*csp_lda.*ifnet"):
        fit_predict("fbcnet", X, y, X, sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="'ifnet'.*sfreq > 80"):
        fit_predict("ifnet", X, y, X, sfreq=64.0, n_classes=2)
    with pytest.raises(ValueError, match="'shallow' needs trials of at least 99"):
        fit_predict("shallow", X[:, :, :60], y, X[:, :, :60], sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        fit_predict("csp_lda", X, y + 1, X, sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="differ"):
        fit_predict("csp_lda", X, y, X[:, :2], sfreq=250.0, n_classes=2)
    assert BASELINES == ("csp_lda", "eegnet", "shallow", "conformer", "ifnet")

"""Tests of mvcnet.preprocess: EA (offline and online), EMS.

Filtering and resampling are those of medcl.io.eeg (the continuous recording); their tests
(50 Hz removed, 12 Hz kept; resampled lengths) moved to tests/io/test_eeg.py."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.mvcnet.preprocess import (
    OnlineEA,
    euclidean_alignment,
    exponential_moving_standardize,
    inv_sqrtm,
    mean_covariance,
    trial_covariances,
)


def _correlated_trials(n: int = 40, c: int = 6, t: int = 200, seed: int = 0) -> np.ndarray:
    """Trials with a strong, non-diagonal spatial covariance (random mixing of sources)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(c, c)) + 3.0 * np.eye(c)
    scales = np.linspace(1.0, 20.0, c)[:, None]
    sources = rng.normal(size=(n, c, t)) * scales
    return (mixing @ sources).astype(np.float32)


# --------------------------------------------------------------------------- offline EA


@pytest.mark.parametrize("demean", [False, True])
def test_ea_mean_covariance_is_identity(demean: bool) -> None:
    X = _correlated_trials()
    before = mean_covariance(X, demean=demean)
    assert not np.allclose(before, np.eye(6), atol=0.1)  # the test data are not white already
    aligned, W = euclidean_alignment(X, demean=demean)
    assert aligned.shape == X.shape and aligned.dtype == np.float32
    np.testing.assert_allclose(mean_covariance(aligned, demean=demean), np.eye(6), atol=1e-4)


def test_ea_matrix_is_symmetric_inverse_sqrt() -> None:
    X = _correlated_trials(seed=1)
    _, W = euclidean_alignment(X)
    R = mean_covariance(X)
    np.testing.assert_array_equal(W, W.T)
    np.testing.assert_allclose(W @ R @ W, np.eye(6), atol=1e-8)
    np.testing.assert_allclose(np.linalg.inv(W @ W), R, rtol=1e-8)
    assert np.all(np.linalg.eigvalsh(W) > 0)


def test_covariance_estimators_by_hand() -> None:
    """Default: the authors' centred np.cov (issue 11 item 5); demean=False: X X^T / T."""
    X = np.array([[[1.0, -1.0, 2.0], [0.0, 3.0, 0.0]]])  # 1 trial, 2 channels, 3 samples
    np.testing.assert_allclose(trial_covariances(X, demean=False)[0], X[0] @ X[0].T / 3)
    np.testing.assert_allclose(trial_covariances(X)[0], np.cov(X[0]))


def test_alignment_defaults_to_the_authors_ea_and_ea_online() -> None:
    """EA and incremental EA by default equal the authors' (utils/alg_utils.py EA, EA_online:
    np.cov per trial, R^-1/2 by a fractional matrix power), on trials with channel offsets
    where the centred and uncentred estimates differ."""
    from scipy.linalg import fractional_matrix_power

    X = _correlated_trials(n=12, c=4, t=60, seed=3).astype(np.float64)
    X += np.random.default_rng(4).normal(scale=15.0, size=(12, 4, 1))  # channel offsets
    R = np.mean([np.cov(x) for x in X], axis=0)
    expected = np.stack([np.real(fractional_matrix_power(R, -0.5)) @ x for x in X])
    np.testing.assert_allclose(euclidean_alignment(X)[0], expected, rtol=1e-6, atol=1e-8)
    assert not np.allclose(euclidean_alignment(X, demean=False)[0], expected, rtol=1e-3)

    R, online = np.zeros((4, 4)), []
    for k, x in enumerate(X):  # EA_online: R <- (R * k + cov(x)) / (k + 1), then align x
        R = (R * k + np.cov(x)) / (k + 1)
        online.append(np.real(fractional_matrix_power(R, -0.5)) @ x)
    got = OnlineEA(4).transform(X)
    np.testing.assert_allclose(got, np.stack(online), rtol=1e-6, atol=1e-8)


def test_singular_reference_is_regularised_with_warning() -> None:
    X = _correlated_trials(n=10, c=4, t=100).astype(np.float64)
    X = X - X.mean(axis=1, keepdims=True)  # common average reference: rank C - 1
    with pytest.warns(RuntimeWarning, match="singular or ill-conditioned"):
        aligned, W = euclidean_alignment(X)
    assert np.all(np.isfinite(aligned)) and np.all(np.isfinite(W))
    # explicit shrinkage makes R well conditioned: no warning
    _, W2 = euclidean_alignment(X, shrinkage=0.1)
    assert np.all(np.isfinite(W2))
    with pytest.raises(ValueError, match="zero"):
        inv_sqrtm(np.zeros((3, 3)))


def test_ea_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="n_trials, n_chans, n_times"):
        euclidean_alignment(np.zeros((3, 4)))


# --------------------------------------------------------------------------- online EA


def test_online_ea_matches_offline_ea_on_every_prefix() -> None:
    X = _correlated_trials(n=12, c=4, t=150, seed=2).astype(np.float64)
    online = OnlineEA(n_chans=4)
    out = online.transform(X)  # a batch is processed in order, trial by trial
    for k in range(3, X.shape[0]):
        # trial k is aligned with the mean covariance of trials 0..k (itself included)
        offline, _ = euclidean_alignment(X[: k + 1])
        np.testing.assert_allclose(out[k], offline[k], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(online.reference_, mean_covariance(X), rtol=1e-10)
    assert online.n_seen == X.shape[0]


def test_online_ea_single_trials_equal_batch() -> None:
    X = _correlated_trials(n=6, c=3, t=100, seed=3)
    batch = OnlineEA(3).transform(X)
    stream = OnlineEA(3)
    singles = np.stack([stream.transform(x) for x in X])
    assert singles.shape == X.shape and singles.dtype == np.float32
    np.testing.assert_allclose(singles, batch, rtol=1e-6)


def test_online_ea_warm_start() -> None:
    X_train = _correlated_trials(n=20, c=4, t=120, seed=4)
    X_test = _correlated_trials(n=5, c=4, t=120, seed=5)
    R0 = mean_covariance(X_train)
    ea = OnlineEA(4, reference=R0, reference_weight=3)
    # without update: the warm-start reference alone aligns, and it stays unchanged
    fixed = ea.transform(X_test, update=False)
    np.testing.assert_allclose(fixed, inv_sqrtm(R0) @ X_test.astype(np.float64), rtol=1e-5)
    assert ea.n_seen == 0
    # with update: R_1 = (3 R0 + C_1) / 4
    first = ea.transform(X_test[0])
    R1 = (3 * R0 + trial_covariances(X_test[:1])[0]) / 4
    np.testing.assert_allclose(ea.reference_, R1, rtol=1e-10)
    np.testing.assert_allclose(first, inv_sqrtm(R1) @ X_test[0], rtol=1e-5)
    with pytest.raises(ValueError, match="needs a reference"):
        OnlineEA(4).transform(X_test, update=False)
    with pytest.raises(ValueError, match="channels"):
        ea.transform(np.zeros((2, 5, 10)))


# --------------------------------------------------------------------------- EMS


def test_exponential_moving_standardize() -> None:
    rng = np.random.default_rng(0)
    n_times, block = 6000, 1000
    offsets = np.array([50.0, -20.0])[:, None]
    scales = np.array([10.0, 0.5])[:, None]
    X = (offsets + scales * rng.normal(size=(3, 2, n_times))).astype(np.float32)
    out = exponential_moving_standardize(X, factor_new=1e-3, init_block_size=block)
    assert out.shape == X.shape and out.dtype == np.float32
    after = out[:, :, block:]
    np.testing.assert_allclose(after.mean(axis=(0, 2)), 0.0, atol=0.05)
    np.testing.assert_allclose(after.std(axis=(0, 2)), 1.0, atol=0.05)
    init = out[:, :, :block]
    np.testing.assert_allclose(init.mean(axis=2), 0.0, atol=1e-4)
    np.testing.assert_allclose(init.std(axis=2), 1.0, atol=1e-4)

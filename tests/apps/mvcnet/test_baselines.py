"""Tests of mvcnet.baselines: CSP+LDA and the braindecode networks trained with the engine."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.mvcnet.baselines import (
    BASELINES,
    MIN_N_TIMES,
    build_model,
    fit_predict,
    min_n_times,
)


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
        ("ifnet_fb", 3, 500, 250.0, 2),
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


@pytest.mark.parametrize(
    ("name", "sfreq"),
    [*((n, 250.0) for n in sorted(MIN_N_TIMES)), ("eegnet", 250.0), ("eegnet", 128.0),
     ("ifnet", 250.0), ("ifnet", 512.0)],
)
def test_minimum_length_is_exact_and_reported(name: str, sfreq: float) -> None:
    least = min_n_times(name, sfreq)
    build_model(name, n_chans=3, n_times=least, sfreq=sfreq, n_classes=2)
    with pytest.raises(ValueError, match=f"'{name}' needs trials of at least {least}"):
        build_model(name, n_chans=3, n_times=least - 1, sfreq=sfreq, n_classes=2)


def test_eegnet_has_the_authors_hyper_parameters() -> None:
    """F1/D/F2 = 4/2/8, temporal kernel sfreq // 2, dropout 0.25 (MVCNet's utils/network.py)."""
    from torch import nn

    for sfreq, kernel in ((250.0, 125), (512.0, 256), (128.0, 64)):
        net = build_model("eegnet", n_chans=5, n_times=500, sfreq=sfreq, n_classes=2)
        convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
        temporal, spatial = convs[0], convs[1]
        assert temporal.out_channels == 4 and temporal.kernel_size == (1, kernel)
        assert spatial.out_channels == 8  # F1 * D
        assert convs[3].out_channels == 8  # F2 (the separable block's pointwise conv)
        drops = {m.p for m in net.modules() if isinstance(m, nn.Dropout)}
        assert drops == {0.25}


def test_ifnet_is_the_authors_single_band_and_ifnet_fb_braindecodes() -> None:
    from braindecode.models import IFNet
    from torch import nn

    for sfreq, n_times, pool in ((250.0, 1000, 125), (512.0, 2560, 128)):
        net = build_model("ifnet", n_chans=22, n_times=n_times, sfreq=sfreq, n_classes=2)
        convs = [m for m in net.modules() if isinstance(m, nn.Conv1d)]
        assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.groups) for c in convs] == [
            (22, 64, 1, 1), (64, 64, 63, 64)]  # one band: one pointwise, one depthwise conv
        (pooling,) = [m for m in net.modules() if isinstance(m, nn.AvgPool1d)]
        assert pooling.kernel_size == (pool,)
        (linear,) = [m for m in net.modules() if isinstance(m, nn.Linear)]
        assert linear.in_features == 64 * (n_times // pool)  # 512 at 250 Hz, 1280 at 512 Hz
        assert {m.p for m in net.modules() if isinstance(m, nn.Dropout)} == {0.5}
        assert any(isinstance(m, nn.GELU) for m in net.modules())
    fb = build_model("ifnet_fb", n_chans=22, n_times=1000, sfreq=250.0, n_classes=2)
    assert isinstance(fb, IFNet)


@pytest.mark.parametrize(("n_train", "sizes"), [(17, [8, 8]), (18, [8, 8, 2])])
def test_networks_see_every_batch_but_a_final_single_trial(monkeypatch, n_train, sizes) -> None:
    """Batches per epoch as MVCNet's training: the partial batch is kept, a batch of 1 dropped
    (braindecode's default DataLoader would give 8, 8, 1 for 17 trials, and crash in BN)."""
    import medcl.mvcnet.baselines as baselines

    seen: list[int] = []
    build = baselines.build_model

    def recording(*args, **kwargs):
        net = build(*args, **kwargs)
        net.register_forward_pre_hook(
            lambda module, inputs: seen.append(len(inputs[0])) if module.training else None)
        return net

    monkeypatch.setattr(baselines, "build_model", recording)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train + 4, 3, 250)).astype(np.float32)
    y = np.arange(n_train) % 2
    fit_predict("ifnet", X[:n_train], y, X[n_train:], sfreq=250.0, n_classes=2, epochs=2,
                batch_size=8)
    assert sorted(seen, reverse=True) == sorted(sizes * 2, reverse=True)


def test_bad_inputs() -> None:
    X, y = _variance_classes(10, c=3, t=120)
    with pytest.raises(ValueError, match=r"unknown baseline 'fbcnet'.*csp_lda.*ifnet"):
        fit_predict("fbcnet", X, y, X, sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="'ifnet_fb'.*sfreq > 80"):
        fit_predict("ifnet_fb", X, y, X, sfreq=64.0, n_classes=2)
    with pytest.raises(ValueError, match="'shallow' needs trials of at least 99"):
        fit_predict("shallow", X[:, :, :60], y, X[:, :, :60], sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        fit_predict("csp_lda", X, y + 1, X, sfreq=250.0, n_classes=2)
    with pytest.raises(ValueError, match="differ"):
        fit_predict("csp_lda", X, y, X[:, :2], sfreq=250.0, n_classes=2)
    assert BASELINES == ("csp_lda", "eegnet", "shallow", "conformer", "ifnet", "ifnet_fb")

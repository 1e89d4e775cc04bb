"""Tests of :mod:`medcl.contrastive.probe`: kNN and linear probes on frozen embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from medcl.contrastive.probe import (
    ProbeResult,
    embed,
    evaluate_embeddings,
    evaluate_split,
    knn_accuracy,
    linear_probe_accuracy,
)

N_CLASSES = 4


def _separable(n_per_class: int = 30, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    z = 0.3 * rng.normal(size=(len(y), dim)) + 4.0 * np.eye(dim)[y]  # one direction per class
    return z.astype(np.float32), y


def _random(n: int = 800, dim: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)), rng.integers(0, N_CLASSES, size=n)


def test_separable_embeddings_are_perfectly_classified() -> None:
    z, y = _separable()
    train, test = np.arange(len(y)) % 3 != 0, np.arange(len(y)) % 3 == 0
    assert knn_accuracy(z[train], y[train], z[test], y[test]) == 1.0
    assert knn_accuracy(z[train], y[train], z[test], y[test], weighted=False, k=5) == 1.0
    assert linear_probe_accuracy(z[train], y[train], z[test], y[test]) == 1.0
    assert linear_probe_accuracy(z[train], y[train], z[test], y[test], balanced=True) == 1.0
    result = evaluate_embeddings(z, y, test_size=0.25, seed=1)
    assert result == ProbeResult(knn=1.0, linear=1.0, n_train=90, n_test=30)
    assert result.as_dict()["knn"] == 1.0


def test_random_labels_are_near_chance() -> None:
    z, y = _random()
    result = evaluate_embeddings(z, y, seed=0)
    chance = 1 / N_CLASSES
    assert abs(result.knn - chance) < 0.08
    assert abs(result.linear - chance) < 0.08
    assert result.n_train + result.n_test == len(y)


def test_probes_detect_a_swapped_label() -> None:
    """The accuracy moves when predictions must: a wrong test label costs exactly 1/M."""
    z, y = _separable()
    test_y = y.copy()
    test_y[0] = (test_y[0] + 1) % N_CLASSES
    expected = 1 - 1 / len(y)
    assert knn_accuracy(z, y, z, test_y, k=1) == pytest.approx(expected)
    assert linear_probe_accuracy(z, y, z, test_y) == pytest.approx(expected)


def test_balanced_accuracy_differs_from_plain_on_imbalanced_errors() -> None:
    # a degenerate probe input: every test point looks like class 0
    train_z, train_y = np.array([[1.0, 0.0], [0.0, 1.0]] * 10), np.array([0, 1] * 10)
    test_z, test_y = np.array([[1.0, 0.0]] * 10), np.array([0] * 9 + [1])
    assert linear_probe_accuracy(train_z, train_y, test_z, test_y) == pytest.approx(0.9)
    assert linear_probe_accuracy(train_z, train_y, test_z, test_y, balanced=True) == 0.5


def _knn_by_hand(train_z, train_y, test_z, test_y, k: int, temperature: float = 0.07) -> float:
    """Cosine kNN with votes exp(s / T) (Wu et al. 2018), in NumPy (independent of the probe)."""
    a = train_z / np.linalg.norm(train_z, axis=1, keepdims=True)
    b = test_z / np.linalg.norm(test_z, axis=1, keepdims=True)
    sim = b @ a.T  # (M, N) cosine similarities
    correct = 0
    for row, truth in zip(sim, test_y, strict=True):
        nearest = np.argsort(-row, kind="stable")[:k]
        votes: dict[int, float] = {}
        for j in nearest:
            votes[int(train_y[j])] = votes.get(int(train_y[j]), 0.0) + np.exp(row[j] / temperature)
        correct += max(votes, key=votes.get) == truth
    return correct / len(test_y)


def _unit(cos: float) -> list[float]:
    return [cos, float(np.sqrt(1 - cos**2))]


def test_knn_votes_are_temperature_weighted_as_wu_et_al():
    """One class-0 neighbour at cos 0.999, five class-1 neighbours at cos 0.95 (k = 6).

    By hand, exp(s / 0.07): class 0 gets e^(0.999/0.07) = 1.56e6, class 1 gets
    5 e^(0.95/0.07) = 3.9e6, so class 1 wins; inverse cosine distance (the old probe) gives
    class 0 1/0.001 = 1000 against 5/0.05 = 100 and picks class 0.
    """
    train_z = np.array([_unit(0.999)] + [_unit(0.95)] * 5 + [[-1.0, 0.0]] * 3)
    train_y = np.array([0] + [1] * 5 + [2] * 3)
    test_z, test_y = np.array([[1.0, 0.0]]), np.array([1])
    assert np.exp(0.999 / 0.07) < 5 * np.exp(0.95 / 0.07)
    assert knn_accuracy(train_z, train_y, test_z, test_y, k=6) == 1.0
    assert _knn_by_hand(train_z, train_y, test_z, test_y, k=6) == 1.0
    # a hot temperature behaves like the majority; a cold one like 1-NN
    assert knn_accuracy(train_z, train_y, test_z, test_y, k=6, temperature=0.001) == 0.0
    assert knn_accuracy(train_z, train_y, test_z, test_y, k=6, weighted=False) == 1.0
    # other metrics keep scikit-learn's inverse-distance votes
    assert knn_accuracy(train_z, train_y, test_z, test_y, k=6, metric="euclidean") == 0.0
    with pytest.raises(ValueError, match="temperature"):
        knn_accuracy(train_z, train_y, test_z, test_y, temperature=0.0)


def _linear_by_sklearn(train_z, train_y, test_z, test_y) -> float:
    """Standardised features, then an L2 logistic regression (C = 1): the linear protocol."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_z)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(scaler.transform(train_z), train_y)
    return float(np.mean(clf.predict(scaler.transform(test_z)) == test_y))


@pytest.mark.parametrize("k", [1, 7])
def test_evaluate_split_matches_independent_references(k: int) -> None:
    # overlapping classes: neither probe is perfect, so a wrong k, split or model shows
    rng = np.random.default_rng(3)
    y = rng.integers(0, N_CLASSES, size=200)
    z = 1.2 * rng.normal(size=(200, 8)) + np.eye(8)[y]
    tr, te = slice(0, 150), slice(150, None)
    res = evaluate_split(z[tr], y[tr], z[te], y[te], k=k)
    want_knn = _knn_by_hand(z[tr], y[tr], z[te], y[te], k)
    want_linear = _linear_by_sklearn(z[tr], y[tr], z[te], y[te])
    assert 0.3 < want_knn < 0.95 and 0.3 < want_linear < 0.95  # the references discriminate
    assert res.knn == pytest.approx(want_knn)
    assert res.linear == pytest.approx(want_linear)
    assert (res.n_train, res.n_test) == (150, 50)
    # control: the data tells k = 1 from k = 7, so a probe ignoring k would fail one case
    other = _knn_by_hand(z[tr], y[tr], z[te], y[te], 8 - k)
    assert other != pytest.approx(want_knn)


def test_unstratifiable_split_falls_back_with_warning() -> None:
    z, y = _separable(n_per_class=10)
    y = y.copy()
    y[0] = 99  # a class with a single member cannot be stratified
    with pytest.warns(UserWarning, match="unstratified"):
        res = evaluate_embeddings(z, y)
    assert res.n_train + res.n_test == len(y)


@pytest.mark.parametrize(
    ("z_shape", "y_shape", "match"),
    [
        ((10,), (10,), "2-D"),
        ((10, 3, 2), (10,), "2-D"),
        ((10, 3), (10, 1), "1-D"),
        ((10, 3), (9,), "length"),
        ((0, 3), (0,), "empty"),
    ],
)
def test_shape_errors(z_shape, y_shape, match) -> None:
    z, y = np.zeros(z_shape), np.zeros(y_shape)
    good_z, good_y = _separable(n_per_class=3)
    with pytest.raises(ValueError, match=match):
        evaluate_embeddings(z, y)
    with pytest.raises(ValueError, match=f"train_.*{match}|{match}"):
        knn_accuracy(z, y, good_z, good_y)
    with pytest.raises(ValueError, match=f"test_.*{match}|{match}"):
        linear_probe_accuracy(good_z, good_y, z, y)


def test_other_input_errors() -> None:
    z, y = _separable(n_per_class=3)
    with pytest.raises(ValueError, match="dimension"):
        knn_accuracy(z, y, z[:, :5], y)
    with pytest.raises(ValueError, match="single class"):
        linear_probe_accuracy(z, np.zeros(len(y)), z, y)
    bad = z.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        evaluate_split(bad, y, z, y)


class _Flatten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(6, 4)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(x.flatten(1)))


def test_embed_loader_tensor_and_array_agree() -> None:
    torch.manual_seed(0)
    encoder = _Flatten().train()
    x = torch.randn(50, 2, 3)
    y = torch.arange(50) % 3
    from_tensor = embed(encoder, x, batch_size=7)
    from_array = embed(encoder, x.numpy())
    z, labels = embed(encoder, DataLoader(TensorDataset(x, y), batch_size=8), return_labels=True)
    bare = embed(encoder, [x[:20], x[20:]])  # an iterable of bare batches
    assert from_tensor.shape == (50, 4) and from_tensor.dtype == np.float32
    np.testing.assert_allclose(from_tensor, z, rtol=1e-6, atol=1e-6)  # eval mode: no dropout
    np.testing.assert_allclose(from_array, z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(bare, z, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(labels, y.numpy())
    assert encoder.training  # mode restored
    with torch.no_grad():
        np.testing.assert_allclose(z, encoder.proj(x.flatten(1)).numpy(), rtol=1e-6, atol=1e-6)


def test_embed_errors_and_device_roundtrip() -> None:
    encoder = _Flatten()
    with pytest.raises(ValueError, match="no labels"):
        embed(encoder, torch.randn(4, 6), return_labels=True)
    with pytest.raises(ValueError, match="no data"):
        embed(encoder, torch.randn(0, 6))
    with pytest.raises(TypeError, match="tensor"):
        embed(_TupleEncoder(), torch.randn(3, 6))
    z = embed(encoder, torch.randn(5, 6), device="cpu")
    assert z.shape == (5, 4)
    assert next(encoder.parameters()).device.type == "cpu"


class _TupleEncoder(nn.Module):
    def forward(self, x: torch.Tensor):
        return x, x


def test_embed_feeds_the_probes() -> None:
    z, y = _separable(n_per_class=20, dim=6)
    loader = DataLoader(TensorDataset(torch.from_numpy(z), torch.from_numpy(y)), batch_size=16)
    emb, labels = embed(nn.Identity(), loader, return_labels=True)
    assert evaluate_embeddings(emb, labels, seed=0).knn == 1.0


def test_few_label_accuracy_separable_and_errors():
    from medcl.contrastive.probe import few_label_accuracy

    rng = np.random.default_rng(0)
    centres = np.eye(4) * 10
    y_tr, y_te = np.repeat(np.arange(4), 20), np.repeat(np.arange(4), 10)
    z_tr = centres[y_tr] + rng.normal(size=(80, 4))
    z_te = centres[y_te] + rng.normal(size=(40, 4))
    res = few_label_accuracy(z_tr, y_tr, z_te, y_te, per_class=1, draws=3)
    assert res["knn1_mean"] == 1.0 and res["linear_mean"] == 1.0
    noise = few_label_accuracy(rng.normal(size=(80, 4)), y_tr, rng.normal(size=(40, 4)), y_te,
                               per_class=2, draws=5)
    assert noise["knn1_mean"] < 0.6
    with pytest.raises(ValueError, match="per_class"):
        few_label_accuracy(z_tr, y_tr, z_te, y_te, per_class=21)

"""Evaluation of frozen embeddings: k-nearest-neighbour and linear-probe accuracy.

The two standard protocols of self-supervised representation learning: a kNN classifier on
the embeddings (Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance
Discrimination", CVPR 2018) and a linear classifier trained on frozen features (the "linear
evaluation protocol" of Chen et al., "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020, Sec. 4). Both are built on scikit-learn.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.repeat([0, 1], 50)
>>> z = rng.normal(size=(100, 8)) + 5.0 * np.eye(8)[y]  # one direction per class
>>> result = evaluate_embeddings(z, y, seed=0)
>>> result.knn, result.linear
(1.0, 1.0)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

__all__ = [
    "ProbeResult",
    "embed",
    "evaluate_embeddings",
    "evaluate_split",
    "knn_accuracy",
    "linear_probe_accuracy",
]


# --------------------------------------------------------------------------- embedding


def _module_device(module: nn.Module) -> torch.device:
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _batches(data: Any, batch_size: int) -> Iterable[tuple[Any, Any]]:
    """Yield ``(x, y_or_None)`` from a Tensor/array (sliced) or a loader (``(x, y)`` or ``x``)."""
    if isinstance(data, np.ndarray):
        data = torch.from_numpy(data)
    if isinstance(data, torch.Tensor):
        for start in range(0, len(data), batch_size):
            yield data[start : start + batch_size], None
        return
    for batch in data:
        if isinstance(batch, list | tuple):
            if len(batch) == 0:
                raise ValueError("the loader yielded an empty batch")
            yield batch[0], (batch[1] if len(batch) > 1 else None)
        elif isinstance(batch, dict):
            if "x" not in batch:
                raise KeyError(f"dict batches need an 'x' key (and optionally 'y'): {list(batch)}")
            yield batch["x"], batch.get("y")
        else:
            yield batch, None


def embed(
    encoder: nn.Module,
    loader_or_tensor: Any,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 256,
    return_labels: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Embed data with a frozen encoder (eval mode, no gradient).

    Parameters
    ----------
    encoder : nn.Module
        Maps a batch ``x: (B, ...)`` to embeddings ``(B, D)`` (outputs with more dimensions
        are flattened to ``(B, -1)``).
    loader_or_tensor : DataLoader, iterable, Tensor or ndarray
        An iterable of ``(x, y, ...)`` tuples, ``{"x": ..., "y": ...}`` dicts or bare ``x``
        batches; or a tensor/array ``(N, ...)`` cut into batches of ``batch_size``.
    device : str, torch.device or None
        Where to run the encoder; ``None`` keeps the encoder's current device. When given, the
        encoder is moved there for the call and moved back afterwards.
    batch_size : int
        Batch size for tensor/array input.
    return_labels : bool
        Also return the labels ``y: (N,)`` collected from the loader.

    Returns
    -------
    numpy.ndarray or tuple of numpy.ndarray
        ``z: (N, D)`` float32 embeddings, and ``y: (N,)`` when ``return_labels``.

    Raises
    ------
    ValueError
        If there is no data, or labels are requested but the data carries none.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    home = _module_device(encoder)
    target = home if device is None else torch.device(device)
    was_training = encoder.training
    zs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    try:
        encoder.to(target)
        encoder.eval()
        with torch.no_grad():
            for x, y in _batches(loader_or_tensor, batch_size):
                out = encoder(torch.as_tensor(x).to(target))
                if not isinstance(out, torch.Tensor):
                    raise TypeError(
                        f"the encoder must return a tensor, got {type(out).__name__}; wrap it to "
                        "return the embedding only"
                    )
                zs.append(out.reshape(out.shape[0], -1).float().cpu().numpy())
                if return_labels:
                    if y is None:
                        raise ValueError("return_labels=True but the data yields no labels")
                    ys.append(np.asarray(torch.as_tensor(y).cpu()).reshape(-1))
    finally:
        encoder.train(was_training)
        encoder.to(home)
    if not zs:
        raise ValueError("no data to embed (empty loader or tensor)")
    z = np.concatenate(zs, axis=0)
    if return_labels:
        return z, np.concatenate(ys, axis=0)
    return z


# --------------------------------------------------------------------------- validation


def _check_zy(z: Any, y: Any, prefix: str = "") -> tuple[np.ndarray, np.ndarray]:
    """Validate embeddings ``z: (N, D)`` and labels ``y: (N,)``; names start with ``prefix``."""
    z_arr, y_arr = np.asarray(z), np.asarray(y)
    if z_arr.ndim != 2:
        raise ValueError(f"{prefix}z must be 2-D (N, D), got shape {z_arr.shape}")
    if y_arr.ndim != 1:
        raise ValueError(f"{prefix}y must be 1-D (N,), got shape {y_arr.shape}")
    if len(z_arr) != len(y_arr):
        raise ValueError(
            f"{prefix}z and {prefix}y differ in length: "
            f"{len(z_arr)} embeddings, {len(y_arr)} labels"
        )
    if len(z_arr) == 0:
        raise ValueError(f"{prefix}z is empty")
    if not np.all(np.isfinite(z_arr)):
        raise ValueError(f"{prefix}z contains NaN or infinite values")
    return z_arr, y_arr


def _check_split(
    train_z: Any, train_y: Any, test_z: Any, test_y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tr_z, tr_y = _check_zy(train_z, train_y, "train_")
    te_z, te_y = _check_zy(test_z, test_y, "test_")
    if tr_z.shape[1] != te_z.shape[1]:
        raise ValueError(
            f"train and test embeddings differ in dimension: {tr_z.shape[1]} vs {te_z.shape[1]}"
        )
    return tr_z, tr_y, te_z, te_y


# --------------------------------------------------------------------------- probes


def _cosine_knn_predict(tr_z: np.ndarray, tr_y: np.ndarray, te_z: np.ndarray, k: int,
                        weighted: bool, temperature: float, chunk: int = 1024) -> np.ndarray:
    """Predicted labels of the cosine kNN classifier of Wu et al. (2018), block by block."""
    classes, tr_idx = np.unique(tr_y, return_inverse=True)
    a = torch.nn.functional.normalize(torch.as_tensor(tr_z, dtype=torch.float64), dim=1)
    labels = torch.as_tensor(tr_idx)
    preds = []
    for start in range(0, len(te_z), chunk):
        b = torch.nn.functional.normalize(
            torch.as_tensor(te_z[start:start + chunk], dtype=torch.float64), dim=1)
        sim, idx = (b @ a.T).topk(k, dim=1)  # (m, k) cosine similarities of the neighbours
        w = torch.exp(sim / temperature) if weighted else torch.ones_like(sim)
        votes = torch.zeros(len(b), len(classes), dtype=torch.float64)
        votes.scatter_add_(1, labels[idx], w)
        preds.append(votes.argmax(1).numpy())  # ties: the smallest label, as scikit-learn
    return classes[np.concatenate(preds)]


def knn_accuracy(
    train_z: np.ndarray,
    train_y: np.ndarray,
    test_z: np.ndarray,
    test_y: np.ndarray,
    *,
    k: int = 20,
    metric: str = "cosine",
    weighted: bool = True,
    temperature: float = 0.07,
) -> float:
    """Accuracy of a k-nearest-neighbour classifier on frozen embeddings.

    With ``metric="cosine"`` (the default) this is the weighted kNN of Wu et al. 2018
    ("Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR): the
    ``k`` training embeddings of highest cosine similarity ``s_i`` vote for their class with
    weight ``exp(s_i / temperature)`` (``temperature = 0.07``, ``k = 20`` as there
    and in the usual SSL evaluation). Other metrics use scikit-learn's classifier with
    inverse-distance votes.

    Parameters
    ----------
    train_z : numpy.ndarray
        Reference embeddings ``(N, D)``.
    train_y : numpy.ndarray
        Reference labels ``(N,)``.
    test_z : numpy.ndarray
        Query embeddings ``(M, D)``.
    test_y : numpy.ndarray
        Query labels ``(M,)``.
    k : int
        Neighbours (capped at ``N``).
    metric : str
        ``"cosine"``, or a scikit-learn distance (``"euclidean"``, ...).
    weighted : bool
        Weighted votes (``exp(s / temperature)`` for cosine, inverse distance otherwise) or
        the plain majority (``False``).
    temperature : float
        Temperature of the cosine vote weights (0.07).

    Returns
    -------
    float
        Fraction of queries whose predicted label equals ``test_y``.
    """
    tr_z, tr_y, te_z, te_y = _check_split(train_z, train_y, test_z, test_y)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    k = min(k, len(tr_z))
    if metric == "cosine":
        pred = _cosine_knn_predict(tr_z, tr_y, te_z, k, weighted, temperature)
        return float(accuracy_score(te_y, pred))
    knn = KNeighborsClassifier(
        n_neighbors=k,
        metric=metric,
        weights="distance" if weighted else "uniform",
        algorithm="brute",
    )
    knn.fit(tr_z, tr_y)
    return float(accuracy_score(te_y, knn.predict(te_z)))


def linear_probe_accuracy(
    train_z: np.ndarray,
    train_y: np.ndarray,
    test_z: np.ndarray,
    test_y: np.ndarray,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    standardize: bool = True,
    balanced: bool = False,
) -> float:
    """Accuracy of a logistic-regression probe trained on frozen embeddings.

    Parameters
    ----------
    train_z, train_y, test_z, test_y : numpy.ndarray
        Embeddings ``(N, D)``/``(M, D)`` and labels ``(N,)``/``(M,)``.
    C : float
        Inverse L2 regularisation strength of :class:`~sklearn.linear_model.LogisticRegression`.
    max_iter : int
        Solver iterations.
    standardize : bool
        Standardise features (fit on the training set) before the classifier.
    balanced : bool
        Weight classes by inverse frequency and report the balanced accuracy (mean recall per
        class) instead of the plain accuracy.

    Returns
    -------
    float
        Accuracy (or balanced accuracy) on the test set.
    """
    tr_z, tr_y, te_z, te_y = _check_split(train_z, train_y, test_z, test_y)
    if len(np.unique(tr_y)) < 2:
        raise ValueError("train_y holds a single class; a linear probe needs at least two")
    steps: list[tuple[str, Any]] = [("scale", StandardScaler())] if standardize else []
    classifier = LogisticRegression(
        C=C, max_iter=max_iter, class_weight="balanced" if balanced else None
    )
    steps.append(("logreg", classifier))
    model = Pipeline(steps)
    model.fit(tr_z, tr_y)
    pred = model.predict(te_z)
    score = balanced_accuracy_score(te_y, pred) if balanced else accuracy_score(te_y, pred)
    return float(score)


@dataclass
class ProbeResult:
    """Scores of the kNN and linear probes.

    Attributes
    ----------
    knn : float
        kNN accuracy.
    linear : float
        Linear-probe accuracy.
    n_train : int
        Training embeddings.
    n_test : int
        Test embeddings.
    """

    knn: float
    linear: float
    n_train: int
    n_test: int

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a dict (e.g. to log from a ``val_fn``)."""
        return asdict(self)


def evaluate_split(
    train_z: np.ndarray,
    train_y: np.ndarray,
    test_z: np.ndarray,
    test_y: np.ndarray,
    k: int = 20,
) -> ProbeResult:
    """kNN and linear-probe accuracy on a given train/test split.

    Parameters
    ----------
    train_z, train_y, test_z, test_y : numpy.ndarray
        Embeddings ``(N, D)``/``(M, D)`` and labels ``(N,)``/``(M,)``.
    k : int
        Neighbours of the kNN probe.

    Returns
    -------
    ProbeResult
    """
    tr_z, tr_y, te_z, te_y = _check_split(train_z, train_y, test_z, test_y)
    return ProbeResult(
        knn=knn_accuracy(tr_z, tr_y, te_z, te_y, k=k),
        linear=linear_probe_accuracy(tr_z, tr_y, te_z, te_y),
        n_train=len(tr_z),
        n_test=len(te_z),
    )


def evaluate_embeddings(
    z: np.ndarray,
    y: np.ndarray,
    *,
    test_size: float = 0.3,
    seed: int = 0,
    k: int = 20,
) -> ProbeResult:
    """Split embeddings (stratified by label) and score the kNN and linear probes.

    Parameters
    ----------
    z : numpy.ndarray
        Embeddings ``(N, D)``.
    y : numpy.ndarray
        Labels ``(N,)``.
    test_size : float
        Test fraction (or count, as in :func:`sklearn.model_selection.train_test_split`).
    seed : int
        Seed of the split.
    k : int
        Neighbours of the kNN probe.

    Returns
    -------
    ProbeResult

    Notes
    -----
    When a class is too small to stratify, the split falls back to an unstratified one with a
    warning.
    """
    z_arr, y_arr = _check_zy(z, y)
    try:
        parts = train_test_split(
            z_arr, y_arr, test_size=test_size, random_state=seed, stratify=y_arr
        )
    except ValueError as err:
        warnings.warn(
            f"stratified split impossible ({err}); using an unstratified split", stacklevel=2
        )
        parts = train_test_split(z_arr, y_arr, test_size=test_size, random_state=seed)
    train_z, test_z, train_y, test_y = parts
    return evaluate_split(train_z, train_y, test_z, test_y, k=k)


def few_label_accuracy(
    train_z: np.ndarray,
    train_y: np.ndarray,
    test_z: np.ndarray,
    test_y: np.ndarray,
    *,
    per_class: int,
    draws: int = 10,
    seed: int = 0,
) -> dict[str, float]:
    """Label-efficiency probes: 1-NN and linear accuracy from ``per_class`` labels per class.

    Each of ``draws`` draws picks ``per_class`` training embeddings of every class at random
    (seeded); the probes are fit on them and scored on the whole test set. With few labels the
    quality of the representation matters far more than with all of them, which is how
    self-supervised methods are usually compared (e.g. SimCLR, Chen et al. 2020, sec. 6).

    Returns
    -------
    dict
        ``knn1_mean``, ``knn1_std``, ``linear_mean``, ``linear_std`` over the draws.
    """
    tr_z, tr_y, te_z, te_y = _check_split(train_z, train_y, test_z, test_y)
    classes, counts = np.unique(tr_y, return_counts=True)
    if per_class < 1 or counts.min() < per_class:
        raise ValueError(
            f"few_label_accuracy: per_class={per_class} needs that many training embeddings in "
            f"every class (smallest class has {counts.min()})"
        )
    rng = np.random.default_rng(seed)
    knn, lin = [], []
    for _ in range(draws):
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(tr_y == c), per_class, replace=False) for c in classes]
        )
        knn.append(knn_accuracy(tr_z[idx], tr_y[idx], te_z, te_y, k=1))
        lin.append(linear_probe_accuracy(tr_z[idx], tr_y[idx], te_z, te_y))
    return {
        "knn1_mean": float(np.mean(knn)),
        "knn1_std": float(np.std(knn)),
        "linear_mean": float(np.mean(lin)),
        "linear_std": float(np.std(lin)),
    }

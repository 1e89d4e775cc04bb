"""All / Old / New clustering accuracy with Hungarian matching.

Generalized category discovery (Vaze et al. 2022, "Generalized Category Discovery", CVPR,
sec. 4 "evaluation") scores the predicted cluster ids of the unlabelled images by the accuracy
under the best one-to-one map from clusters to classes,

.. math::

    ACC = \\max_{p \\in \\mathcal{P}(Y)} \\frac{1}{N} \\sum_i [y_i = p(\\hat y_i)],

found with the Hungarian algorithm (:func:`scipy.optimize.linear_sum_assignment`). "Old" and
"New" are the same accuracy restricted to images of the known and the novel classes, *under the
one map computed on all images* (the "v2" protocol of the GCD and BaCon code, which replaced
separate per-subset matching).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AccuracySplit", "cluster_accuracy", "split_accuracy", "hungarian_map"]


@dataclass(frozen=True)
class AccuracySplit:
    """Accuracy on all images, on those of known ("old") and of novel ("new") classes
    (``nan`` when the subset is empty)."""

    all: float
    old: float
    new: float


def hungarian_map(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, int]:
    """The cluster -> class map maximising the number of matches.

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
        Classes and predicted cluster ids (any non-negative integers; the numbers of classes and
        clusters may differ: unmatched clusters map to ``-1``).

    Returns
    -------
    dict
        ``{cluster: class}`` for every cluster id present in ``y_pred``.
    """
    from scipy.optimize import linear_sum_assignment

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D")
    classes, t = np.unique(y_true, return_inverse=True)
    clusters, p = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    np.add.at(counts, (p, t), 1)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    mapping = {int(c): -1 for c in clusters}
    for r, c in zip(rows, cols, strict=True):
        mapping[int(clusters[r])] = int(classes[c])
    return mapping


def cluster_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Hungarian-matched accuracy (the equation of the module docstring)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    if y_true.size == 0:
        return float("nan")
    mapping = hungarian_map(y_true, y_pred)
    mapped = np.array([mapping[int(c)] for c in np.asarray(y_pred)], dtype=np.int64)
    return float((mapped == y_true).mean())


def split_accuracy(y_true: np.ndarray, y_pred: np.ndarray, old_mask: np.ndarray) -> AccuracySplit:
    """All / Old / New accuracy under one Hungarian map fitted on all images ("v2").

    Parameters
    ----------
    y_true, y_pred : array of int, shape (N,)
    old_mask : array of bool, shape (N,)
        True for images whose class is a known (labelled) class.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    old_mask = np.asarray(old_mask, dtype=bool)
    if old_mask.shape != y_true.shape:
        raise ValueError("old_mask must have the shape of y_true")
    if y_true.size == 0:
        return AccuracySplit(float("nan"), float("nan"), float("nan"))
    mapping = hungarian_map(y_true, y_pred)
    hit = np.array([mapping[int(c)] for c in np.asarray(y_pred)]) == y_true

    def mean(m: np.ndarray) -> float:
        return float(hit[m].mean()) if m.any() else float("nan")

    return AccuracySplit(float(hit.mean()), mean(old_mask), mean(~old_mask))

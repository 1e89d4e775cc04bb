"""Semi-supervised k-means (Vaze et al. 2022, "Generalized Category Discovery", CVPR, sec. 3.2).

The GCD baseline's classifier: k-means on the frozen features in which the labelled images are
clamped to the cluster of their class. Initialisation: the ``K_old`` centroids are the means of
the labelled classes; the other ``K - K_old`` by k-means++ on the unlabelled features (as the
paper). Each iteration assigns only the unlabelled images to their nearest centroid and
recomputes every centroid from its members, labelled and unlabelled.
"""

from __future__ import annotations

import numpy as np

__all__ = ["semi_supervised_kmeans"]


def _kmeanspp(x: np.ndarray, centres: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Add ``k`` centres to ``centres`` by k-means++ seeding (Arthur & Vassilvitskii 2007)."""
    out = list(centres)
    for _ in range(k):
        if out:
            d2 = ((x[:, None, :] - np.asarray(out)[None]) ** 2).sum(-1).min(1)
            p = d2 / d2.sum() if d2.sum() > 0 else np.full(len(x), 1.0 / len(x))
        else:
            p = np.full(len(x), 1.0 / len(x))
        out.append(x[rng.choice(len(x), p=p)])
    return np.asarray(out)


def semi_supervised_kmeans(features: np.ndarray, labels: np.ndarray, n_clusters: int,
                           max_iter: int = 100, seed: int = 0,
                           tol: float = 1e-6) -> np.ndarray:
    """Cluster ids of every image; labelled images keep their class as cluster id.

    Parameters
    ----------
    features : array, shape (N, D)
        (Normalised) features of labelled and unlabelled images.
    labels : array of int, shape (N,)
        The class (``0..K_old-1``) of labelled images, ``-1`` for unlabelled ones.
    n_clusters : int
        ``K``, at least the number of labelled classes.
    max_iter, seed, tol
        Iterations, the seed of the k-means++ draw, the centroid-shift stopping threshold.

    Returns
    -------
    array of int, shape (N,)
        Cluster ids in ``0..K-1``; ids below ``K_old`` are the labelled classes.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    lab = y >= 0
    known = np.unique(y[lab])
    if len(known) and not np.array_equal(known, np.arange(len(known))):
        raise ValueError("labelled classes must be numbered 0..K_old-1")
    k_old = len(known)
    if n_clusters < k_old:
        raise ValueError(f"n_clusters {n_clusters} < number of labelled classes {k_old}")
    rng = np.random.default_rng(seed)
    centres = np.stack([x[y == c].mean(0) for c in range(k_old)]) if k_old else np.zeros(
        (0, x.shape[1]))
    unl = x[~lab] if (~lab).any() else x
    centres = _kmeanspp(unl, centres, n_clusters - k_old, rng)
    assign = np.where(lab, y, 0)
    for _ in range(max_iter):
        d2 = ((x[:, None, :] - centres[None]) ** 2).sum(-1)
        assign = np.where(lab, y, d2.argmin(1))
        new = centres.copy()
        for c in range(n_clusters):
            members = assign == c
            if members.any():
                new[c] = x[members].mean(0)
        shift = float(((new - centres) ** 2).sum())
        centres = new
        if shift < tol:
            break
    return assign

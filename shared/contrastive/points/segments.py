"""Over-segmentation of a point cloud into background planes and foreground segments.

FAC (Liu et al., CVPR 2023, sec. 3.1) builds its contrast pairs from segments: indoors an
unsupervised over-segmentation, outdoors ground removal followed by clustering. The paper leaves
the algorithm open; medcl's choice, from numpy and scikit-learn only:

1. Background = up to ``max_planes`` large planes found by RANSAC (Fischler & Bolles 1981):
   repeatedly fit the plane through three random points, keep the one with most inliers within
   ``threshold``, remove its inliers; stop when the best plane has fewer than
   ``min_plane_fraction`` of the points. Ground and walls of rooms, road of street blocks.
2. Foreground = DBSCAN (Ester et al. 1996; :class:`sklearn.cluster.DBSCAN`) on the remaining
   points; each cluster is a segment, DBSCAN noise points get segment ``-1`` (ignored by the
   losses).

Segments are numbered planes first (``0 .. n_planes - 1``, background) then clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Segments", "ransac_plane", "segment_cloud"]


@dataclass(frozen=True)
class Segments:
    """``ids`` (N,) segment of every point (-1: none); ``foreground`` (S,) bool per segment."""

    ids: np.ndarray
    foreground: np.ndarray

    @property
    def n_segments(self) -> int:
        return int(self.foreground.shape[0])

    def point_foreground(self) -> np.ndarray:
        """(N,) bool: the point lies in a foreground segment."""
        ok = self.ids >= 0
        out = np.zeros(self.ids.shape, dtype=bool)
        out[ok] = self.foreground[self.ids[ok]]
        return out


def ransac_plane(xyz: np.ndarray, threshold: float, iterations: int,
                 rng: np.random.Generator, score_points: int = 2000
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Best plane ``n . p = d`` by RANSAC; returns ``(inlier mask over xyz, [n, d])``.

    Hypotheses are scored on a random subset of ``score_points`` points (the inlier fraction is
    what matters), the winner's inliers are then taken over all points."""
    n = xyz.shape[0]
    sub = xyz if n <= score_points else xyz[rng.choice(n, score_points, replace=False)]
    best_count, best_plane = -1, np.array([0.0, 0.0, 1.0, 0.0])
    for _ in range(iterations):
        a, b, c = sub[rng.choice(sub.shape[0], 3, replace=False)]
        normal = np.cross(b - a, c - a)
        norm = np.linalg.norm(normal)
        if norm < 1e-12:
            continue
        normal = normal / norm
        count = int((np.abs(sub @ normal - normal @ a) < threshold).sum())
        if count > best_count:
            best_count, best_plane = count, np.append(normal, normal @ a)
    inl = np.abs(xyz @ best_plane[:3] - best_plane[3]) < threshold
    return inl, best_plane


def segment_cloud(xyz: np.ndarray, *, threshold: float = 0.03, max_planes: int = 4,
                  min_plane_fraction: float = 0.08, iterations: int = 200, eps: float = 0.12,
                  min_samples: int = 8, seed: int = 0) -> Segments:
    """Planes (background) then DBSCAN clusters (foreground) of ``xyz`` (N, 3), in metres."""
    from sklearn.cluster import DBSCAN

    rng = np.random.default_rng(seed)
    n = xyz.shape[0]
    ids = np.full(n, -1, dtype=np.int64)
    rest = np.arange(n)
    fg: list[bool] = []
    for _ in range(max_planes):
        if rest.size < max(3, min_plane_fraction * n):
            break
        inl, _ = ransac_plane(xyz[rest], threshold, iterations, rng)
        if inl.sum() < min_plane_fraction * n:
            break
        ids[rest[inl]] = len(fg)
        fg.append(False)
        rest = rest[~inl]
    if rest.size >= min_samples:
        labels = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(xyz[rest])
        for lab in np.unique(labels[labels >= 0]):
            ids[rest[labels == lab]] = len(fg)
            fg.append(True)
    return Segments(ids, np.asarray(fg, dtype=bool))

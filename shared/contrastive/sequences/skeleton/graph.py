"""Skeleton layouts and the ST-GCN adjacency with spatial-configuration partitioning.

Yan, Xiong, Lin, "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018, sec. 3.4-3.6: the neighbours of a root joint (1 hop, the root
included) are split into ``K = 3`` subsets by their distance to the skeleton's gravity centre
``r``: the root itself, the *centripetal* neighbours (``r_j < r_i``) and the *centrifugal*
ones (``r_j >= r_i``, equal distances included as in the authors' code). Each subset gets its
own weights (eq. 10). Normalisation: the paper writes ``Lambda^-1/2 A Lambda^-1/2``; as the
authors' code (and HiCLR's copy of it) we divide each target's column by its degree
(``A D^-1``), so a joint averages its neighbours.

Convention: ``A[k, j, i]`` is the weight of source joint ``j`` in target joint ``i``;
a graph convolution is ``y[..., i] = sum_k sum_j x_k[..., j] A[k, j, i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["LAYOUTS", "SkeletonLayout", "hop_distance", "layout_from_edges",
           "spatial_adjacency"]


@dataclass(frozen=True)
class SkeletonLayout:
    """Joints and bones of a skeleton.

    Parameters
    ----------
    name : str
    num_joints : int
    edges : tuple of (int, int)
        Bones, 0-based joint indices (no self loops).
    center : int
        The joint taken as gravity centre for the partitioning.
    flip : tuple of int or None
        Joint permutation swapping left and right (``None``: no spatial flip).
    """

    name: str
    num_joints: int
    edges: tuple[tuple[int, int], ...]
    center: int
    flip: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        v = self.num_joints
        if v < 1:
            raise ValueError(f"layout {self.name}: num_joints must be >= 1")
        for i, j in self.edges:
            if not (0 <= i < v and 0 <= j < v) or i == j:
                raise ValueError(f"layout {self.name}: bad edge ({i}, {j}) for {v} joints")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name}: center {self.center} out of range")
        if self.flip is not None and sorted(self.flip) != list(range(v)):
            raise ValueError(f"layout {self.name}: flip is not a permutation of {v} joints")


def _one_based(pairs: Sequence[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    return tuple((i - 1, j - 1) for i, j in pairs)


# NTU RGB+D (Shahroudy et al., CVPR 2016), 25 Kinect v2 joints; 21 = spine shoulder is centre.
_NTU_EDGES = _one_based([(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7),
                         (9, 21), (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14),
                         (16, 15), (17, 1), (18, 17), (19, 18), (20, 19), (22, 23), (23, 8),
                         (24, 25), (25, 12)])
# left arm 5-8 <-> right arm 9-12, left leg 13-16 <-> right leg 17-20,
# hand tip/thumb 22,23 <-> 24,25 (1-based)
_NTU_FLIP = (0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23, 24,
             21, 22)
# COCO keypoints: 0 nose, 1/2 eyes, 3/4 ears, 5/6 shoulders, 7/8 elbows, 9/10 wrists,
# 11/12 hips, 13/14 knees, 15/16 ankles (left/right); the COCO skeleton's 19 bones.
_COCO_EDGES = _one_based([(16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13),
                          (6, 7), (6, 8), (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3),
                          (2, 4), (3, 5), (4, 6), (5, 7)])
_COCO_FLIP = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

LAYOUTS: dict[str, SkeletonLayout] = {
    "ntu25": SkeletonLayout("ntu25", 25, _NTU_EDGES, center=20, flip=_NTU_FLIP),
    "coco17": SkeletonLayout("coco17", 17, _COCO_EDGES, center=0, flip=_COCO_FLIP),
}


def layout_from_edges(edges: Sequence[tuple[int, int]], num_joints: int | None = None,
                      name: str = "custom", center: int | None = None) -> SkeletonLayout:
    """A layout from 0-based bones; ``num_joints`` defaults to the largest index + 1 and
    ``center`` to the joint of highest degree (the lowest index among ties). No flip."""
    edges = tuple((int(i), int(j)) for i, j in edges)
    v = num_joints if num_joints is not None else 1 + max(max(e) for e in edges)
    if center is None:
        degree = np.zeros(v, dtype=int)
        for i, j in edges:
            degree[i] += 1
            degree[j] += 1
        center = int(np.argmax(degree))
    return SkeletonLayout(name, int(v), edges, int(center), None)


def hop_distance(num_joints: int, edges: Sequence[tuple[int, int]]) -> np.ndarray:
    """Shortest path lengths in bones ``(V, V)`` (``inf`` between disconnected joints), by
    breadth-first search."""
    neighbours: list[list[int]] = [[] for _ in range(num_joints)]
    for i, j in edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    dist = np.full((num_joints, num_joints), np.inf)
    for s in range(num_joints):
        dist[s, s] = 0
        frontier = [s]
        while frontier:
            nxt = []
            for u in frontier:
                for w in neighbours[u]:
                    if dist[s, w] == np.inf:
                        dist[s, w] = dist[s, u] + 1
                        nxt.append(w)
            frontier = nxt
    return dist


def spatial_adjacency(layout: SkeletonLayout) -> Tensor:
    """The ``(3, V, V)`` float32 adjacency of ST-GCN's spatial configuration partitioning.

    ``A[0]`` the root (self loops), ``A[1]`` centripetal neighbours (source nearer the centre
    than the target), ``A[2]`` centrifugal ones (farther or equally far); entries are
    ``1 / deg(i)`` with ``deg`` counting the target's neighbours and itself, so
    ``A.sum((0, 1)) == 1`` for every target joint ``i``.
    """
    v = layout.num_joints
    hop = hop_distance(v, layout.edges)
    near = (hop <= 1).astype(np.float64)
    norm = near / near.sum(0, keepdims=True)  # column i divided by deg(i): A D^-1
    r = hop[:, layout.center]
    a = np.zeros((3, v, v))
    for j in range(v):
        for i in range(v):
            if hop[j, i] == 0:
                a[0, j, i] = norm[j, i]
            elif hop[j, i] == 1:
                a[1 if r[j] < r[i] else 2, j, i] = norm[j, i]
    return torch.tensor(a, dtype=torch.float32)

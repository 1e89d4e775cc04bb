"""k nearest neighbours of point sets in blocks (``torch.cdist`` + ``topk``), no CUDA extension.

DGCNN (Wang et al. 2019, "Dynamic Graph CNN for Learning on Point Clouds", sec. 3.1) builds a
kNN graph in every EdgeConv layer. The dense way materialises the ``(N, N)`` distance matrix of
each cloud; :func:`knn` computes the same neighbours one block of query rows at a time, so peak
memory is ``O(chunk x N)`` per cloud instead of ``O(N^2)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["knn", "knn_dense"]


def knn_dense(x: Tensor, k: int, y: Tensor | None = None) -> Tensor:
    """Indices of the ``k`` nearest points of ``y`` (default ``x``) for every point of ``x``.

    Parameters
    ----------
    x : Tensor, shape (B, N, D)
    k : int
    y : Tensor, shape (B, M, D), optional

    Returns
    -------
    Tensor, shape (B, N, k), long: nearest first (a point's own index first when ``y`` is ``x``).
    """
    y = x if y is None else y
    d = torch.cdist(x, y)
    return d.topk(k, dim=-1, largest=False).indices


def knn(x: Tensor, k: int, y: Tensor | None = None, chunk: int = 1024) -> Tensor:
    """:func:`knn_dense` computed ``chunk`` query points at a time (same result, bounded memory).

    Ties are broken as ``topk`` breaks them inside each block, which equals the dense result
    whenever the ``k``-th and ``k+1``-th distances differ (the case tests check).
    """
    if x.ndim != 3:
        raise ValueError(f"knn: x must be (B, N, D), got {tuple(x.shape)}")
    y = x if y is None else y
    if k > y.shape[1]:
        raise ValueError(f"knn: k={k} exceeds the {y.shape[1]} points to search")
    if chunk <= 0 or x.shape[1] <= chunk:
        return knn_dense(x, k, y)
    parts = []
    with torch.no_grad():
        for start in range(0, x.shape[1], chunk):
            d = torch.cdist(x[:, start:start + chunk], y)
            parts.append(d.topk(k, dim=-1, largest=False).indices)
    return torch.cat(parts, dim=1)

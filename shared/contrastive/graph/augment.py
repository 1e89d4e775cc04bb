"""GRACE's graph views (Zhu et al. 2020, "Deep Graph Contrastive Representation Learning",
arXiv:2006.04131, sec. 3.2): removing edges (RE) and masking node features (MF)."""

from __future__ import annotations

import torch
from torch import Tensor


def drop_edges(edge_index: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Keep each edge with probability ``1 - p`` (GRACE's RE, the mask ``R_ij ~ B(1 - p_r)``).

    As GRACE's code, each directed edge is dropped independently (an undirected graph may keep
    one direction of an edge).

    Parameters
    ----------
    edge_index : Tensor, shape (2, E), long
    p : float
        Drop probability in ``[0, 1)``.
    generator : torch.Generator, optional

    Returns
    -------
    Tensor, shape (2, E')
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"drop_edges: p must be in [0, 1), got {p}")
    if p == 0.0 or edge_index.shape[1] == 0:
        return edge_index
    keep = torch.rand(edge_index.shape[1], generator=generator,
                      device=edge_index.device) >= p
    return edge_index[:, keep]


def mask_features(x: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Zero each feature *dimension* with probability ``p`` for every node (GRACE's MF: one
    mask ``m ~ B(1 - p_m)`` of length ``F`` shared by all nodes).

    Parameters
    ----------
    x : Tensor, shape (N, F)
    p : float
        Mask probability in ``[0, 1)``.
    """
    if not 0.0 <= p < 1.0:
        raise ValueError(f"mask_features: p must be in [0, 1), got {p}")
    if p == 0.0:
        return x
    keep = torch.rand(x.shape[1], generator=generator, device=x.device) >= p
    return x * keep.to(x.dtype)[None, :]

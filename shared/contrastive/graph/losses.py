"""Node-level contrastive losses: GRACE's node InfoNCE and gCooL's community terms.

Every InfoNCE here goes through the core's mask-based kernel
:func:`medcl.contrastive.functional.info_nce` (chunked, with recomputation in backward), so the
``(N, N)`` similarity matrix of a large graph is never held whole when ``chunk_size`` is set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..functional import LabelMasks, info_nce, pair_labels


def grace_loss(h1: Tensor, h2: Tensor, temperature: float = 0.5,
               chunk_size: int | None = None, anchor_index: Tensor | None = None) -> Tensor:
    """GRACE's objective (Zhu et al. 2020, arXiv:2006.04131, eq. 1-2).

    For the projected views ``u = g(f(G1))``, ``v = g(f(G2))`` and ``theta`` the cosine
    similarity,

    .. math::

        \\ell(u_i, v_i) = -\\log \\frac{e^{\\theta(u_i, v_i)/\\tau}}
            {e^{\\theta(u_i, v_i)/\\tau} + \\sum_{k \\ne i} e^{\\theta(u_i, v_k)/\\tau}
             + \\sum_{k \\ne i} e^{\\theta(u_i, u_k)/\\tau}},
        \\qquad J = \\frac{1}{2N} \\sum_i \\big(\\ell(u_i, v_i) + \\ell(v_i, u_i)\\big)

    i.e. NT-Xent over the ``2N`` node embeddings: the kernel with pair labels and the anchor's
    own column removed (inter-view negatives ``v_k`` and intra-view negatives ``u_k``).

    Parameters
    ----------
    h1, h2 : Tensor, shape (N, D)
        Projections of the two views (normalised here).
    temperature : float
        ``tau`` (GRACE: 0.4-0.9 per data set; 0.5 default).
    chunk_size : int, optional
        Anchors per block of the kernel (memory ``O(chunk x 2N)``).
    anchor_index : Tensor, shape (B,), optional
        Only these nodes are anchors (both their views); every node stays a negative. Used by
        mini-batch training, where the first ``B`` nodes of a sampled subgraph are its seeds.
    """
    if h1.shape != h2.shape or h1.ndim != 2:
        raise ValueError(f"grace_loss: views {tuple(h1.shape)} and {tuple(h2.shape)} must be the "
                         "same (N, D)")
    n = h1.shape[0]
    z = F.normalize(torch.cat([h1, h2]), dim=1)
    labels = pair_labels(n, 2, device=z.device)
    own = torch.arange(2 * n, device=z.device)
    if anchor_index is None:
        return info_nce(z, z, LabelMasks(labels, labels, own), temperature=temperature,
                        chunk_size=chunk_size)
    rows = torch.cat([anchor_index, anchor_index + n])
    return info_nce(z[rows], z, LabelMasks(labels[rows], labels, own[rows]),
                    temperature=temperature, chunk_size=chunk_size)


def node_cross_view_loss(h1: Tensor, h2: Tensor, temperature: float = 0.5,
                         chunk_size: int | None = None) -> Tensor:
    """gCooL's node term ``L_node`` (Li et al. 2022, "Graph Communal Contrastive Learning",
    WWW, arXiv:2110.14863, eq. 2): InfoNCE of node ``i`` of one view against every node of the
    other view (inter-view negatives only), averaged over both directions.
    """
    n = h1.shape[0]
    a, b = F.normalize(h1, dim=1), F.normalize(h2, dim=1)
    ids = torch.arange(n, device=a.device)
    masks = LabelMasks(ids, ids)
    return 0.5 * (info_nce(a, b, masks, temperature=temperature, chunk_size=chunk_size)
                  + info_nce(b, a, masks, temperature=temperature, chunk_size=chunk_size))


def community_assign(h: Tensor, centres: Tensor, temperature: float = 0.5) -> Tensor:
    """gCooL's soft community assignment ``R = softmax(cos(h, c_k) / tau)`` (sec. 4.1, eq. 4).

    As the authors' code, ``h`` is detached: the assignment trains the centres only.

    Parameters
    ----------
    h : Tensor, shape (N, D)
    centres : Tensor, shape (K, D), learnable

    Returns
    -------
    Tensor, shape (N, K), rows summing to 1
    """
    s = F.normalize(h.detach(), dim=1) @ F.normalize(centres, dim=1).T
    return torch.softmax(s / temperature, dim=1)


def _coalesced(edge_index: Tensor, n: int) -> Tensor:
    key = torch.unique(edge_index[0] * n + edge_index[1])
    return torch.stack([key // n, key % n])


def deca_loss(r: Tensor, edge_index: Tensor, lam: float = 1.0) -> Tensor:
    """Dense Community Aggregation (gCooL, sec. 4.1, eq. 5-8): the intra-community edge density
    up and the inter-community density down, plus the assignment-collapse term.

    With ``F = R^T A R`` (``K x K`` soft edge counts between communities),

    .. math::

        L_{DeCA} = \\frac{\\lambda \\sum_{kl} F_{kl} - (n - 1 + \\lambda)\\,\\mathrm{tr} F}
                        {n (n - 1)} + \\frac{\\mathrm{tr}(R^T R)}{2n}

    ``A R`` is computed edge by edge (``O(E K)``), never the dense ``(n, n)`` adjacency of the
    authors' code; duplicate edges count once, as there.

    Parameters
    ----------
    r : Tensor, shape (n, K)
        Soft assignments (:func:`community_assign`).
    edge_index : Tensor, shape (2, E)
        ``A_ij = 1`` for each edge ``(i, j)``.
    lam : float
        ``lambda`` (1.0 in the paper).
    """
    n = r.shape[0]
    if n < 2:
        raise ValueError("deca_loss: needs at least 2 nodes")
    ei = _coalesced(edge_index, n)
    ar = torch.zeros_like(r).index_add_(0, ei[0], r[ei[1]])
    f = r.T @ ar
    return (lam * f.sum() - (n - 1 + lam) * f.trace()) / (n * (n - 1)) \
        + (r * r).sum() / (2 * n)


def community_centroids(h: Tensor, index: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Member means ``c_k`` of hard communities (``index``: (N,) in ``[0, k)``): ``(k, D)`` and
    a ``(k,)`` bool mask of the non-empty ones (empty ones are zero)."""
    sums = h.new_zeros(k, h.shape[1]).index_add_(0, index, h)
    count = torch.bincount(index, minlength=k).to(h.dtype)
    return sums / count.clamp_min(1.0)[:, None], count > 0


def _resc_direction(h: Tensor, index_other: Tensor, h_other: Tensor, k: int, temperature: float,
                    gamma: float) -> Tensor:
    c, present = community_centroids(h_other.detach(), index_other, k)
    c = F.normalize(c, dim=1)
    pos = F.one_hot(index_other, k).bool()
    neg = present[None, :] & ~pos
    weight = None
    if gamma > 0:
        w = torch.exp(-gamma * torch.cdist(c, c).pow(2))  # (k, k) RBF of centroid distances
        weight = w[index_other]
    return info_nce(F.normalize(h, dim=1), c, pos, neg, temperature=temperature,
                    neg_weight=weight)


def resc_loss(h1: Tensor, h2: Tensor, r1: Tensor, r2: Tensor, temperature: float = 0.5,
              gamma: float = 8e-5) -> Tensor:
    """Reweighted Self-supervised Cross-contrastive training (gCooL, sec. 4.2, eq. 9-11).

    Node ``i`` of view 1 against the community centroids ``c'_k`` (member means, detached) of
    view 2, its positive being the centroid of its own community in view 2 and each other
    centroid a negative weighted by ``w_kl = exp(-gamma ||c'_k - c'_l||^2)`` (the RBF weight of
    the paper, eq. 10), and symmetrically; averaged over both directions:

    .. math::

        \\ell_i = -\\log \\frac{e^{s(h_i, c'_{k_i})/\\tau}}{e^{s(h_i, c'_{k_i})/\\tau}
                   + \\sum_{l \\ne k_i} w_{k_i l}\\, e^{s(h_i, c'_l)/\\tau}}

    with ``s`` the cosine similarity. Departures from the authors' code: empty communities are
    left out of the negatives (the code contrasts against zero vectors), and the RBF weights
    are applied with cosine similarities (the code applies them only with its RBF similarity).
    ``gamma = 0`` gives unweighted negatives.

    Parameters
    ----------
    h1, h2 : Tensor, shape (N, D)
    r1, r2 : Tensor, shape (N, K)
        Soft assignments of the two views; their argmax picks the hard communities.
    """
    k = r1.shape[1]
    i1, i2 = r1.detach().argmax(1), r2.detach().argmax(1)
    return 0.5 * (_resc_direction(h1, i2, h2, k, temperature, gamma)
                  + _resc_direction(h2, i1, h1, k, temperature, gamma))


def gcool_weights(epoch: int, stride: int = 500, alpha_rate: float = 0.2) -> tuple[float, float]:
    """gCooL's schedule (sec. 4.3, eq. 12; the authors' code): the weights of DeCA and ReSC at
    ``epoch``, ``(alpha_t e^{-t/stride}, alpha_t (1 - e^{-t/stride}))`` with
    ``alpha_t = max(0, 1 - t / (alpha_rate stride))``: DeCA first, ReSC later, both off after
    ``alpha_rate x stride`` epochs (100 with the defaults)."""
    alpha = max(0.0, 1.0 - epoch / (alpha_rate * stride))
    coef = math.exp(-epoch / stride)
    return alpha * coef, alpha * (1.0 - coef)

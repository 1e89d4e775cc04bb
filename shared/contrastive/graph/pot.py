"""POT: certified node compactness as a regulariser of graph contrastive learning (Yu et al.
2023, "Provable Training for Graph Contrastive Learning", NeurIPS, arXiv:2309.13944).

POT asks that every node stay on the right side of the contrastive objective under *every*
augmentation an edge-dropping augmentor can draw, not only under the two it drew. For a 2-layer
GCN ``f`` and the other view's normalised embeddings ``z'``, node ``i``'s compactness under a
perturbed graph ``G'`` is (sec. 4.1)

.. math::

    \\tilde f_i(G') = \\big\\langle f(G')_i,\\; w_i \\big\\rangle, \\qquad
    w_i = z'_i - \\frac{1}{N - 1} \\sum_{j \\ne i} z'_j

and POT bounds ``min_{G' in B(G)} f_i(G')`` from below over the set ``B(G)`` of graphs where each
node ``i`` loses at most ``q_i = min(max(deg~_i - 2, 0), round(p deg_i))`` of its edges
(:func:`drop_budget`; ``deg~ = deg + 1`` with the self-loop, as the authors' code), then adds
``-log sigma(bound_i)`` to the contrastive loss (sec. 4.3):
``L = (1 - kappa) L_GCL + kappa mean_i -log sigma(bound_i)``.

The bound
---------
Each entry of the normalised adjacency ``A^ = D~^-1/2 (A + I) D~^-1/2`` lies in an interval over
``B(G)`` (:func:`adjacency_bounds`, the paper's Theorem 1): an edge ``(i, j)`` that may be dropped
(``q_i, q_j >= 1``) in ``[0, 1/sqrt((deg~_i - q_i)(deg~_j - q_j))]``, one that may not in
``[1/sqrt(deg~_i deg~_j), same upper]``, the self-loop in ``[1/deg~_i, 1/(deg~_i - q_i)]``.
:func:`gcn_interval_bounds` then propagates intervals through both layers by interval
arithmetic (IBP): for ``a in [L, U]`` with ``L >= 0`` and ``v in [l, u]``,
``a v >= L max(l, 0) + U min(l, 0)`` and ``a v <= U max(u, 0) + L min(u, 0)``; linear maps by
centre and radius; monotone activations elementwise. Every step is sound, so the bound holds
for every drop set in ``B(G)`` (tested by enumeration on small graphs).

Departures from the authors' code: the authors propagate the first layer by interval
arithmetic and then use CROWN's linear relaxation for the second layer, with the hidden layer
taken from the *clean* graph, and finally evaluate the relaxed linear function on the drawn
view. Here both layers use interval arithmetic over the whole budget, which is looser but a true
lower bound for every drop set, and cheap (``O(E H)``, sparse, no dense ``(N, N)`` matrices).
The target ``w`` is detached (a constant of the certificate).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _no_self_loops(edge_index: Tensor) -> Tensor:
    return edge_index[:, edge_index[0] != edge_index[1]]


def drop_budget(edge_index: Tensor, num_nodes: int, p: float) -> Tensor:
    """Edges each node may lose: ``q_i = min(max(deg~_i - 2, 0), round(p deg_i))`` (long, (N,)).

    ``deg_i`` counts the edges into ``i`` (self-loops ignored); ``deg~ = deg + 1``. The
    ``deg~ - 2`` cap keeps at least one neighbour, as the authors' code.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"drop_budget: p must be in [0, 1], got {p}")
    ei = _no_self_loops(edge_index)
    deg = torch.bincount(ei[1], minlength=num_nodes)
    cap = (deg + 1 - 2).clamp_min(0)
    return torch.minimum(cap, torch.round(p * deg.to(torch.float64)).long())


def adjacency_bounds(edge_index: Tensor, num_nodes: int, budget: Tensor,
                     dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor, Tensor, Tensor,
                                                                  Tensor]:
    """Interval bounds of the normalised adjacency over the drop sets of ``budget``.

    Returns
    -------
    edges : Tensor, shape (2, E)
        The edges without self-loops (``src -> dst``: ``dst`` aggregates ``src``).
    lo_edge, up_edge : Tensor, shape (E,)
        Bounds of ``A^_{dst, src}``.
    lo_self, up_self : Tensor, shape (N,)
        Bounds of ``A^_ii``.
    """
    ei = _no_self_loops(edge_index)
    deg = torch.bincount(ei[1], minlength=num_nodes).to(dtype) + 1.0
    q = budget.to(dtype)
    src, dst = ei[0], ei[1]
    up_edge = (deg[src] - q[src]).rsqrt() * (deg[dst] - q[dst]).rsqrt()
    droppable = (budget[src] >= 1) & (budget[dst] >= 1)
    lo_edge = torch.where(droppable, torch.zeros_like(up_edge), (deg[src] * deg[dst]).rsqrt())
    return ei, lo_edge, up_edge, 1.0 / deg, 1.0 / (deg - q)


def _agg(edges: Tensor, w: Tensor, v: Tensor, w_self: Tensor) -> Tensor:
    """``sum_j A_ij v_j`` for nonnegative entries ``w`` on ``edges`` and ``w_self`` on the
    diagonal."""
    out = v * w_self[:, None]
    return out.index_add(0, edges[1], v[edges[0]] * w[:, None])


def _interval_aggregate(bounds, lo: Tensor, up: Tensor) -> tuple[Tensor, Tensor]:
    """Bounds of ``A^ v`` for ``A^`` in ``bounds`` and ``v`` in ``[lo, up]``."""
    edges, le, ue, ls, us = bounds
    low = _agg(edges, le, lo.clamp_min(0), ls) + _agg(edges, ue, lo.clamp_max(0), us)
    high = _agg(edges, ue, up.clamp_min(0), us) + _agg(edges, le, up.clamp_max(0), ls)
    return low, high


def gcn_interval_bounds(encoder: nn.Module, x: Tensor, edge_index: Tensor,
                        budget: Tensor) -> tuple[Tensor, Tensor]:
    """Elementwise bounds ``(lower, upper)`` ``(N, D)`` of a 2-layer
    :class:`~medcl.contrastive.graph.encoders.GCN`'s output over every drop set of ``budget``.

    Differentiable in the encoder's weights (POT trains through the bound).
    """
    convs = encoder.convs
    if len(convs) != 2:
        raise ValueError("gcn_interval_bounds: POT's bounds cover a 2-layer GCN only")
    bounds = adjacency_bounds(edge_index, x.shape[0], budget, dtype=x.dtype)
    m = convs[0].lin(x)  # X W1, exact (features are not perturbed)
    lo, up = _interval_aggregate(bounds, m, m)
    b1 = convs[0].bias
    if b1 is not None:
        lo, up = lo + b1, up + b1
    lo, up = encoder.act(lo, 0), encoder.act(up, 0)
    w2 = convs[1].lin.weight  # (out, in)
    centre, radius = (lo + up) / 2, (up - lo) / 2
    pc, pr = centre @ w2.T, radius @ w2.abs().T
    lo, up = _interval_aggregate(bounds, pc - pr, pc + pr)
    b2 = convs[1].bias
    if b2 is not None:
        lo, up = lo + b2, up + b2
    return encoder.act(lo, 1), encoder.act(up, 1)


def compactness_target(z_other: Tensor) -> Tensor:
    """``w_i = z'_i - mean_{j != i} z'_j`` with ``z'`` the normalised other view, detached:
    (N, D)."""
    z = F.normalize(z_other.detach(), dim=1)
    n = z.shape[0]
    return z * (n / (n - 1)) - z.sum(0, keepdim=True) / (n - 1)


def compactness(h: Tensor, w: Tensor) -> Tensor:
    """Exact compactness ``<h_i, w_i>`` (N,)."""
    return (h * w).sum(1)


def compactness_lower_bound(lower: Tensor, upper: Tensor, w: Tensor) -> Tensor:
    """``min_{h in [lower, upper]} <h_i, w_i> = sum_k max(w,0) lower + min(w,0) upper`` (N,)."""
    return (w.clamp_min(0) * lower + w.clamp_max(0) * upper).sum(1)


def pot_regulariser(encoder: nn.Module, x: Tensor, edge_index: Tensor,
                    z_other: Tensor | list[Tensor], p: float,
                    nodes: Tensor | None = None) -> Tensor:
    """POT's term ``mean_i -log sigma(bound_i)`` (BCE with logits against 1) over ``nodes``
    (default all), for the drop ratio ``p`` of the edge-dropping augmentor.

    ``z_other`` may be a list of views (e.g. ``[z2, z1]``): the bounds are computed once and
    the term is averaged over the views' targets (the authors' code computes the term once per
    view).
    """
    budget = drop_budget(edge_index, x.shape[0], p)
    lower, upper = gcn_interval_bounds(encoder, x, edge_index, budget)
    others = z_other if isinstance(z_other, list | tuple) else [z_other]
    terms = []
    for z in others:
        bound = compactness_lower_bound(lower, upper, compactness_target(z))
        if nodes is not None:
            bound = bound[nodes]
        terms.append(F.softplus(-bound).mean())
    return torch.stack(terms).mean()

"""The maths of HiCLR: MoCo logits over a queue and directional distribution matching.

HiCLR (Zhang, Lin, Liu, AAAI 2023, sec. 3.3 "Hierarchical consistent contrastive learning"):
every branch ``b`` scores its query ``q_b`` against the same momentum key ``k`` and queue
``{n_j}``, ``p_b = softmax([q_b . k, q_b . n_1, ..., q_b . n_K] / tau)``. The basic branch is
trained with InfoNCE (MoCo, He et al. 2020, eq. 1); each stronger branch is pulled towards the
distribution of the branch one step weaker, which is held fixed (gradient stopped):

.. math::

    L_{b \\to b+1} = -\\frac{1}{N} \\sum_i \\sum_j \\mathrm{sg}(p_b)_{ij} \\log p_{b+1, ij}

a one-directional cross-entropy, so a strongly augmented view learns from the weaker one and
never the reverse. The total loss (authors' ``processor/pretrain_hiclr.py``) is
``L = L_nce(p_0) + (L_{0->1} + L_{1->2}) / 2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["distribution_matching", "hierarchical_consistency", "moco_logits"]


def moco_logits(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """``[q . k, q . n_1, ..., q . n_K] / tau``: ``q, k (N, D)``, ``queue (K, D)`` (all
    L2-normalised by the caller) -> ``(N, 1 + K)``, the positive in column 0."""
    if q.ndim != 2 or q.shape != k.shape or queue.ndim != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"moco_logits: q {tuple(q.shape)}, k {tuple(k.shape)} and queue "
                         f"{tuple(queue.shape)} must be (N, D), (N, D), (K, D)")
    pos = (q * k.detach()).sum(1, keepdim=True)
    neg = q @ queue.detach().T
    return torch.cat([pos, neg], dim=1) / temperature


def distribution_matching(strong: Tensor, weak: Tensor) -> Tensor:
    """``-mean_i sum_j softmax(weak)_ij.detach() * log_softmax(strong)_ij``: the strong
    branch's logits ``(N, L)`` follow the weak branch's (no gradient reaches ``weak``)."""
    if strong.shape != weak.shape or strong.ndim != 2:
        raise ValueError(f"distribution_matching: logits {tuple(strong.shape)} and "
                         f"{tuple(weak.shape)} must be one (N, L) shape")
    target = F.softmax(weak.detach(), dim=1)
    return -(target * F.log_softmax(strong, dim=1)).sum(1).mean()


def hierarchical_consistency(branch_logits: Sequence[Tensor],
                             weights: Sequence[float] | None = None) -> Tensor:
    """``sum_b w_b L_{b -> b+1}`` over adjacent branches ordered weak to strong
    (``weights`` default ``1 / (B - 1)`` each, HiCLR's 0.5 for three branches)."""
    n = len(branch_logits)
    if n < 2:
        return branch_logits[0].new_zeros(()) if n else torch.zeros(())
    weights = [1.0 / (n - 1)] * (n - 1) if weights is None else list(weights)
    if len(weights) != n - 1:
        raise ValueError(f"hierarchical_consistency: {n} branches need {n - 1} weights")
    return sum(w * distribution_matching(branch_logits[b + 1], branch_logits[b])
               for b, w in enumerate(weights))

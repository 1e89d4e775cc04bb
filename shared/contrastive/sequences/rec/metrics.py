"""Full-ranking evaluation of next-item recommendation: HR@K and NDCG@K.

Every item of the catalogue is ranked for every user (no sampled negatives; Krichene & Rendle,
"On Sampled Metrics for Item Recommendation", KDD 2020, which MCLRec follows, §4.1.3).
With ``r`` the 0-based rank of the held-out target item among all items,

.. math::

    \\mathrm{HR@K} = \\mathbb{1}[r < K], \\qquad
    \\mathrm{NDCG@K} = \\frac{\\mathbb{1}[r < K]}{\\log_2(r + 2)}

(one relevant item, so the ideal DCG is 1), averaged over users.

Ties are counted against the target: ``r = #{j != t : s_j >= s_t}``. A model that scores every
item alike therefore ranks the target last, not first (``torch.topk``, as RecBole uses it,
breaks ties by position instead, which can flatter a degenerate model).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["target_ranks", "hit_ndcg", "DEFAULT_KS"]

DEFAULT_KS = (5, 10, 20)


def target_ranks(scores: Tensor, targets: Tensor, exclude: Tensor | None = None) -> Tensor:
    """0-based rank of each user's target among all items, ties counted against the target.

    Parameters
    ----------
    scores : Tensor, shape (B, I)
        Score of every candidate item for every user.
    targets : Tensor, shape (B,)
        Column of the held-out item of each user.
    exclude : Tensor, shape (B, I), bool, optional
        Items that are not candidates for a user (e.g. padding, or history items); the target
        itself is never excluded.

    Returns
    -------
    Tensor, shape (B,), int64
    """
    if scores.ndim != 2 or targets.shape != (scores.shape[0],):
        raise ValueError(f"target_ranks: scores (B, I) and targets (B,), got "
                         f"{tuple(scores.shape)} and {tuple(targets.shape)}")
    rows = torch.arange(scores.shape[0], device=scores.device)
    t = scores[rows, targets]
    above = scores >= t[:, None]
    above[rows, targets] = False
    if exclude is not None:
        above &= ~exclude
    return above.sum(1)


def hit_ndcg(ranks: Tensor, ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """Mean HR@K and NDCG@K over users from 0-based target ranks.

    Returns
    -------
    dict
        ``{"HR@5": ..., "NDCG@5": ..., ...}`` in the order of ``ks``.
    """
    r = ranks.to(torch.float64)
    out: dict[str, float] = {}
    for k in ks:
        hit = r < k
        out[f"HR@{k}"] = float(hit.to(torch.float64).mean()) if len(r) else math.nan
        gain = torch.where(hit, 1.0 / torch.log2(r + 2.0), torch.zeros_like(r))
        out[f"NDCG@{k}"] = float(gain.mean()) if len(r) else math.nan
    return out

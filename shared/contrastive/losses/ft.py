"""Feature Transformation: positive extrapolation and negative interpolation in feature space
(Zhu, Liu, Xu, Qiu, Tang, Wen, Hua 2021, "Improving Contrastive Learning by Visualizing Feature
Transformation", ICCV, arXiv:2108.02982, sec. 4; authors' code
DTennant/CL-Visualizing-Feature-Transformation ``memory/mem_moco.py``)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import info_nce_logits, negative_interpolation, positive_extrapolation
from ._base import normalize


def _beta(alpha: float, shape: tuple[int, ...], like: Tensor) -> Tensor:
    dist = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    return dist.sample(shape).to(device=like.device, dtype=like.dtype)


class FeatureTransformLoss(nn.Module):
    """InfoNCE with transformed features, over a batch (NT-Xent) or a MoCo queue.

    - positive extrapolation: ``q_hat = lam q + (1 - lam) k``, ``k_hat = lam k + (1 - lam) q``,
      ``lam ~ Beta(pos_alpha, pos_alpha) + 1`` (harder positives);
    - negative interpolation: ``n_hat = mu n + (1 - mu) n[perm]``, ``mu ~ Beta(neg_alpha,
      neg_alpha)`` (more diverse negatives).

    As the authors' default (``dim_mask='both'``), ``lam`` and ``mu`` are drawn per dimension.
    Randomness comes from torch's global generator (seed it through the engine).

    Two modes:

    - ``queue=None`` (NT-Xent): anchors are the ``2N`` transformed views; each anchor's
      positive is its other view, its negatives the interpolated batch (mixes involving the
      anchor's own item are excluded).
    - ``queue`` given (MoCo): ``q`` from the online encoder, ``k`` from a
      :class:`~medcl.contrastive.momentum.MomentumEncoder` (detached), negatives the
      interpolated queue (:class:`~medcl.contrastive.momentum.FeatureQueue`). Departure: the
      caller enqueues the *untransformed* keys (the authors' code enqueues the mixed ones).

    Parameters
    ----------
    temperature : float
        ``tau`` (0.07 for MoCo in the paper; use 0.2-0.5 in NT-Xent mode).
    pos_alpha : float
        Beta parameter of positive extrapolation (2.0).
    neg_alpha : float
        Beta parameter of negative interpolation (1.6).
    extrapolate, interpolate : bool
        Switch each transformation.
    renormalize : bool
        L2-normalise after the transformation (the authors' ``postmix_norm``; off by default).

    Returns
    -------
    dict
        ``loss`` (scalar) and, detached for per-epoch histograms as the paper's figures:
        ``pos_scores`` (A,) positive cosine per anchor, ``neg_scores_mean`` (A,) and
        ``neg_scores_var`` (A,) over each anchor's negatives.

    Examples
    --------
    >>> out = FeatureTransformLoss(temperature=0.2)(torch.randn(16, 32), torch.randn(16, 32))
    >>> out["loss"].backward()   # out["pos_scores"], out["neg_scores_mean"] for the plots
    """

    def __init__(self, temperature: float = 0.07, pos_alpha: float = 2.0,
                 neg_alpha: float = 1.6, extrapolate: bool = True, interpolate: bool = True,
                 renormalize: bool = False) -> None:
        super().__init__()
        if temperature <= 0 or pos_alpha <= 0 or neg_alpha <= 0:
            raise ValueError("FeatureTransformLoss: temperature and Beta parameters must be > 0")
        self.temperature = float(temperature)
        self.pos_alpha, self.neg_alpha = float(pos_alpha), float(neg_alpha)
        self.extrapolate, self.interpolate = bool(extrapolate), bool(interpolate)
        self.renormalize = bool(renormalize)

    def _pos(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        if not self.extrapolate:
            return q, k
        lam = _beta(self.pos_alpha, tuple(q.shape), q) + 1.0
        q, k = positive_extrapolation(q, k, lam)
        return (normalize(q), normalize(k)) if self.renormalize else (q, k)

    def _neg(self, n: Tensor) -> tuple[Tensor, Tensor]:
        perm = torch.randperm(n.shape[0], device=n.device)
        if not self.interpolate:
            return n, torch.arange(n.shape[0], device=n.device)
        out = negative_interpolation(n, _beta(self.neg_alpha, tuple(n.shape), n), perm)
        return (normalize(out) if self.renormalize else out), perm

    def forward(self, q: Tensor, k: Tensor, queue: Tensor | None = None) -> dict[str, Tensor]:
        """``q, k``: (N, D) projections of two views (``k`` detached in MoCo mode);
        ``queue``: (K, D) stored negatives or ``None``. Inputs are L2-normalised here."""
        if q.ndim != 2 or q.shape != k.shape:
            raise ValueError(f"FeatureTransformLoss: q {tuple(q.shape)} and k {tuple(k.shape)} "
                             "must be (N, D) of one shape")
        q, k = normalize(q), normalize(k)
        n = q.shape[0]
        if queue is not None:
            if queue.ndim != 2 or queue.shape[1] != q.shape[1] or queue.shape[0] < 1:
                raise ValueError("FeatureTransformLoss: queue must be (K, D) with K >= 1")
            q, k = self._pos(q, k.detach())
            negs, _ = self._neg(normalize(queue.detach()))
            pos = (q * k).sum(1, keepdim=True)
            neg = q @ negs.T
            logits = torch.cat([pos, neg], dim=1) / self.temperature
            mask = torch.zeros_like(logits, dtype=torch.bool)
            mask[:, 0] = True
            loss = info_nce_logits(logits, mask)
            return self._stats(loss, pos.squeeze(1), neg)
        q, k = self._pos(q, k)
        anchors = torch.cat([q, k])
        item = torch.arange(n, device=q.device).repeat(2)
        negs, perm = self._neg(anchors)
        s = anchors @ torch.cat([anchors, negs]).T  # positives from the views, negatives mixed
        eye = torch.eye(2 * n, dtype=torch.bool, device=q.device)
        pos_mask = torch.cat([item[:, None] == item[None, :], torch.zeros_like(eye)], 1) & ~(
            torch.cat([eye, torch.zeros_like(eye)], 1))
        own = (item[:, None] == item[None, :]) | (item[:, None] == item[perm][None, :])
        neg_mask = torch.cat([torch.zeros_like(eye), ~own], 1)
        loss = info_nce_logits(s / self.temperature, pos_mask, neg_mask)
        pos_s = s[pos_mask].reshape(2 * n)
        neg_s = s[:, 2 * n:].masked_fill(own, float("nan"))
        return self._stats(loss, pos_s, neg_s)

    @staticmethod
    def _stats(loss: Tensor, pos: Tensor, neg: Tensor) -> dict[str, Tensor]:
        neg = neg.detach()
        mean = neg.nanmean(1)
        var = (neg - mean[:, None]).pow(2).nanmean(1)
        return {"loss": loss, "pos_scores": pos.detach(), "neg_scores_mean": mean,
                "neg_scores_var": var}

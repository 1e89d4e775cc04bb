"""The maths of the contrastive core: one mask-based InfoNCE kernel, alignment and uniformity.

Every InfoNCE-family loss in medcl (SimCLR's NT-Xent, SupCon, DCL, DCLW, multi-positive and
weighted-negative variants) is :func:`info_nce` with different masks and weights; the modules in
:mod:`medcl.contrastive.losses` only build those masks and own state such as distributed gathering.

The kernel
----------
For anchors ``a_i`` and samples ``b_j`` with similarity ``s_ij = <a_i, b_j> / tau`` the loss of
anchor ``i`` is

.. math::

    \\ell_i = -\\frac{\\sum_j P_{ij} W_{ij} s_{ij}}{\\sum_j P_{ij}}
             + \\log \\sum_j \\big(c\\,[P_{ij} > 0] + N_{ij} V_{ij}\\big) e^{s_{ij}}

with ``P`` the positive mask (bool, or float for soft positives), ``W`` the positive weights,
``N`` the negative mask, ``V`` the negative weights and ``c = 1`` when positives belong to the
denominator (InfoNCE, van den Oord et al. 2018, eq. 4; SimCLR, Chen et al. 2020, eq. 1; SupCon
``L^sup_out``, Khosla et al. 2020, eq. 2) or ``c = 0`` when they do not (decoupled contrastive
learning, Yeh et al. 2022, eq. 6). Anchors without any positive are left out of the mean.

Memory
------
The kernel is an :class:`torch.autograd.Function` that processes anchors in chunks and, in
backward, recomputes each chunk's similarity block instead of keeping it, using the closed-form
gradient ``dl_i/ds_ij = -P_ij W_ij / sum_j P_ij + D_ij softmax_D(s_i)_j``. Masks may be given as
label vectors (:class:`LabelMasks`) so that no ``(N, N)`` tensor is ever materialised: peak
memory is ``O(chunk_size x N)`` in forward and backward.

The plain path
--------------
``info_nce(..., fast=False)`` computes the same equation in plain PyTorch: the dense masks, the
whole ``(Na, Ns)`` similarity matrix and autograd. For the InfoNCE / NT-Xent / SupCon family
(positives in the denominator, no positive weights) it is :func:`torch.nn.functional.cross_entropy`
with the normalised positive mask ``P / sum_j P`` as soft target over the denominator logits
``s_ij + log(c [P_ij > 0] + N_ij V_ij)``; for the other variants (DCL, DCLW, positives that are
also weighted negatives) it is ``logsumexp`` of those logits minus the positive term. It is the
reference the fast kernel is tested against (values and gradients) and the path to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "LabelMasks",
    "info_nce",
    "pair_labels",
    "alignment",
    "uniformity",
    "kernel_joint_entropy_loss",
]


@dataclass(frozen=True)
class LabelMasks:
    """Positive / negative masks defined by labels, built one chunk of anchors at a time.

    ``pos_ij = anchor_labels[i] == sample_labels[j]`` and ``neg_ij = not pos_ij``, both with the
    anchor itself removed when ``self_index[i]`` names its own column in the samples.

    Parameters
    ----------
    anchor_labels : Tensor, shape (Na,)
        Integer label of each anchor (a class, or a pair id for instance discrimination).
    sample_labels : Tensor, shape (Ns,)
        Integer label of each sample.
    self_index : Tensor or None, shape (Na,)
        Column of each anchor in the sample set (``-1`` for none); that column is neither
        positive nor negative. ``None`` when anchors and samples are disjoint.
    """

    anchor_labels: Tensor
    sample_labels: Tensor
    self_index: Tensor | None = None

    def __post_init__(self) -> None:
        if self.anchor_labels.ndim != 1 or self.sample_labels.ndim != 1:
            raise ValueError("LabelMasks: anchor_labels and sample_labels must be 1-D")
        if self.self_index is not None and self.self_index.shape != self.anchor_labels.shape:
            raise ValueError("LabelMasks: self_index must have the shape of anchor_labels")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.anchor_labels.shape[0], self.sample_labels.shape[0])

    def rows(self, start: int, stop: int) -> tuple[Tensor, Tensor]:
        """Return ``(pos, neg)`` bool masks of shape ``(stop - start, Ns)``."""
        pos = self.anchor_labels[start:stop, None] == self.sample_labels[None, :]
        neg = ~pos
        if self.self_index is not None:
            idx = self.self_index[start:stop]
            rows = torch.arange(stop - start, device=idx.device)[idx >= 0]
            cols = idx[idx >= 0]
            pos[rows, cols] = False
            neg[rows, cols] = False
        return pos, neg


def pair_labels(n: int, n_views: int = 2, device: torch.device | str | None = None) -> Tensor:
    """Pair ids ``[0..n-1]`` repeated for each view: shape ``(n_views * n,)``.

    With embeddings stacked view by view (``torch.cat([z_view0, z_view1])``), two rows are a
    positive pair exactly when their pair ids are equal (SimCLR's instance discrimination).
    """
    return torch.arange(n, device=device).repeat(n_views)


def _check_dense(name: str, t: Tensor | None, shape: tuple[int, int], per_anchor: bool) -> None:
    if t is None:
        return
    ok = tuple(t.shape) == shape or (per_anchor and tuple(t.shape) == (shape[0],))
    if not ok:
        allowed = f"{shape}" + (f" or ({shape[0]},)" if per_anchor else "")
        raise ValueError(f"info_nce: {name} has shape {tuple(t.shape)}, expected {allowed}")


class _DensePlan:
    """Masks and weights given as dense ``(Na, Ns)`` tensors (any pattern, soft positives)."""

    def __init__(self, pos, neg, pos_weight, neg_weight, pos_in_den, ct):
        self.pos, self.neg, self.pw, self.nw = pos, neg, pos_weight, neg_weight
        self.pos_in_den, self.ct = pos_in_den, ct

    def _terms(self, start, stop):
        p = self.pos[start:stop].to(self.ct)
        d = (self.neg[start:stop] if self.neg is not None else ~(p > 0)).to(self.ct)
        if self.nw is not None:
            nw = self.nw[start:stop].to(self.ct)
            d = d * (nw[:, None] if nw.ndim == 1 else nw)
        if self.pos_in_den:
            d = d + (p > 0).to(self.ct)
        pw = p if self.pw is None else p * self._col(self.pw[start:stop].to(self.ct))
        return p, d, pw

    @staticmethod
    def _col(w):
        return w[:, None] if w.ndim == 1 else w

    def counts(self, anchor, sample):
        return self.pos.to(self.ct).sum(1)

    def block(self, s, start, stop):
        """Denominator logits (log 0 = -inf drops non-members) and sum_j P W s of the block."""
        p, d, pw = self._terms(start, stop)
        return s + d.log(), (pw * s).sum(1)

    def block_pos_grad(self, gs, start, stop, coef):
        """Subtract the positive term's ds from ``gs``; ``coef`` = g_i / (tau * count_i)."""
        p, d, pw = self._terms(start, stop)
        gs.sub_(pw * coef[:, None])

    def pos_sum(self, anchor, sample, inv_tau):
        return None  # computed block by block

    def pos_grad(self, anchor, sample, coef, grad_a, grad_b):
        return None


class _LabelPlan:
    """Masks from labels: nothing ``(Na, Ns)`` is stored, and the positive term is computed from
    per-label sums of the samples in ``O((Na + Ns) D)`` instead of over the similarity blocks."""

    def __init__(self, masks: LabelMasks, pos_weight, pos_in_den, ct, device):
        self.m, self.pw, self.pos_in_den, self.ct = masks, pos_weight, pos_in_den, ct
        uniq, inv = torch.unique(masks.sample_labels, return_inverse=True)
        self.inv = inv
        self.k = uniq.numel()
        idx = torch.searchsorted(uniq, masks.anchor_labels).clamp_max(self.k - 1)
        self.present = uniq[idx] == masks.anchor_labels
        self.idx = idx
        si = masks.self_index
        if si is None:
            si = torch.full_like(masks.anchor_labels, -1)
        own = si.clamp_min(0)
        self.self_pos = (si >= 0) & (masks.sample_labels[own] == masks.anchor_labels)
        self.own = own
        self.self_rows = torch.nonzero(si >= 0).flatten()
        self.self_cols = si[self.self_rows]
        self.psum: Tensor | None = None

    def counts(self, anchor, sample):
        per_label = torch.bincount(self.inv, minlength=self.k).to(self.ct)
        cnt = torch.where(self.present, per_label[self.idx], torch.zeros_like(per_label[self.idx]))
        return cnt - self.self_pos.to(self.ct)

    def _psum(self, sample):
        """Sum of each anchor's positive samples, (Na, D); computed once, reused in backward."""
        if self.psum is not None:
            return self.psum
        sums = sample.new_zeros(self.k, sample.shape[1], dtype=self.ct)
        sums.index_add_(0, self.inv, sample.to(self.ct))
        out = sums[self.idx] * self.present[:, None]
        self.psum = out - sample[self.own].to(self.ct) * self.self_pos[:, None]
        return self.psum

    def pos_sum(self, anchor, sample, inv_tau):
        out = (anchor.to(self.ct) * self._psum(sample)).sum(1) * inv_tau
        return out if self.pw is None else out * self.pw.to(self.ct)

    def block(self, s, start, stop):
        m = self.m
        if not self.pos_in_den:
            s.masked_fill_(m.anchor_labels[start:stop, None] == m.sample_labels[None, :],
                           float("-inf"))
        rows, cols = self.self_rows, self.self_cols
        if start > 0 or stop < m.shape[0]:
            inside = (rows >= start) & (rows < stop)
            rows, cols = rows[inside], cols[inside]
        s[rows - start, cols] = float("-inf")
        return s, None

    def block_pos_grad(self, gs, start, stop, coef):
        return None

    def pos_grad(self, anchor, sample, coef, grad_a, grad_b):
        """Add the positive term's gradient; ``coef`` = g_i w_i / (tau count_i)."""
        c = coef if self.pw is None else coef * self.pw.to(self.ct)
        if grad_a is not None:
            grad_a -= (self._psum(sample) * c[:, None]).to(grad_a.dtype)
        if grad_b is not None:
            ca = anchor.to(self.ct) * (c * self.present)[:, None]
            sums = ca.new_zeros(self.k, ca.shape[1])
            sums.index_add_(0, self.idx, ca)
            grad_b -= sums[self.inv]
            grad_b.index_add_(0, self.own, ca * self.self_pos[:, None])


def _logits(anchor, sample, start, stop, inv_tau, ct):
    """Similarity block ``<a_i, b_j> / tau`` for anchors start:stop (scaled on the thin side)."""
    return torch.mm(anchor[start:stop] * inv_tau, sample.T).to(ct)


class _InfoNCE(torch.autograd.Function):
    """Chunked InfoNCE with recomputation in backward; see the module docstring."""

    @staticmethod
    def forward(ctx, anchor, sample, plan, inv_tau, chunk, reduction):
        n_a = anchor.shape[0]
        ct = plan.ct
        logden = anchor.new_empty(n_a, dtype=ct)
        cnt = plan.counts(anchor, sample)
        pos = plan.pos_sum(anchor, sample, inv_tau)
        if pos is None:
            pos = anchor.new_empty(n_a, dtype=ct)
        keep = chunk >= n_a  # a single block is kept for backward instead of recomputed
        ctx.kept = None
        for start in range(0, n_a, chunk):
            stop = min(start + chunk, n_a)
            den, pos_block = plan.block(_logits(anchor, sample, start, stop, inv_tau, ct),
                                        start, stop)
            if pos_block is not None:
                pos[start:stop] = pos_block
            # log-sum-exp by hand so that the exponentials can be kept for backward
            top = den.amax(dim=1, keepdim=True)
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
            expd = den.sub_(top).exp_()
            total = expd.sum(dim=1)
            logden[start:stop] = top.squeeze(1) + total.log()
            if keep:
                ctx.kept = (expd, total)
        valid = cnt > 0
        losses = torch.where(valid, logden - pos / cnt.clamp_min(1e-12), torch.zeros_like(pos))
        n_valid = max(int(valid.sum()), 1)
        ctx.save_for_backward(anchor, sample, logden, cnt)
        ctx.plan, ctx.inv_tau, ctx.chunk, ctx.reduction, ctx.n_valid = (
            plan, inv_tau, chunk, reduction, n_valid)
        if reduction == "none":
            return losses
        total = losses.sum()
        return (total / n_valid if reduction == "mean" else total).to(anchor.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        anchor, sample, logden, cnt = ctx.saved_tensors
        plan, inv_tau, chunk = ctx.plan, ctx.inv_tau, ctx.chunk
        ct = logden.dtype
        n_a = anchor.shape[0]
        if ctx.reduction == "none":
            g = grad_out.to(ct)
        else:
            scale = 1.0 / ctx.n_valid if ctx.reduction == "mean" else 1.0
            g = (grad_out.to(ct) * scale).expand(n_a)
        g = torch.where(cnt > 0, g, torch.zeros_like(g))
        coef = g * inv_tau / cnt.clamp_min(1e-12)
        need_a, need_b = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_a = anchor.new_zeros(anchor.shape, dtype=ct) if need_a else None
        grad_b = sample.new_zeros(sample.shape, dtype=ct) if need_b else None
        a_ct, b_ct = anchor.to(ct), sample.to(ct)
        for start in range(0, n_a, chunk):
            stop = min(start + chunk, n_a)
            # dl_i/ds_ij = softmax over the denominator - P_ij W_ij / count_i (positive term)
            scale = g[start:stop] * inv_tau
            if ctx.kept is not None:
                expd, total = ctx.kept
                gs = expd.mul_((scale / total)[:, None])
            else:
                den, _ = plan.block(_logits(anchor, sample, start, stop, inv_tau, ct),
                                    start, stop)
                gs = den.sub_(logden[start:stop, None]).exp_().mul_(scale[:, None])
            plan.block_pos_grad(gs, start, stop, coef[start:stop])
            if need_a:
                grad_a[start:stop] = gs @ b_ct
            if need_b:
                grad_b.addmm_(gs.T, a_ct[start:stop])
        ctx.kept = None
        plan.pos_grad(anchor, sample, coef, grad_a, grad_b)
        return (None if grad_a is None else grad_a.to(anchor.dtype),
                None if grad_b is None else grad_b.to(sample.dtype), None, None, None, None)


def _info_nce_plain(anchor, sample, pos, neg, inv_tau, pos_weight, neg_weight, pos_in_den,
                    reduction, ct):
    """The module-docstring equation in plain PyTorch (dense masks, autograd).

    ``pos``: (Na, Ns) bool or float; ``neg``: (Na, Ns) bool or None (everything not positive);
    weights: None, (Na,) or (Na, Ns), constants. Returns what :func:`info_nce` returns.
    """
    s = torch.mm(anchor.to(ct), sample.to(ct).T) * inv_tau  # (Na, Ns)
    p = pos.to(ct)
    member = p > 0
    d = (~member if neg is None else neg).to(ct)
    if neg_weight is not None:
        nw = neg_weight.to(ct)
        d = d * (nw[:, None] if nw.ndim == 1 else nw)
    if pos_in_den:
        d = d + member.to(ct)
    # denominator logits; a column outside the denominator (weight 0) gets the most negative
    # finite value rather than -inf, so that a zero target times its log-probability stays 0
    logits = torch.where(d > 0, s + d.log(), torch.finfo(ct).min)
    count = p.sum(1)
    valid = count > 0
    target = p / count.clamp_min(1e-12)[:, None]
    if pos_weight is not None:
        pw = pos_weight.to(ct)
        target = target * (pw[:, None] if pw.ndim == 1 else pw)
    plain_ce = pos_in_den and pos_weight is None and bool((d[member] == 1).all())
    if plain_ce:  # InfoNCE / NT-Xent / SupCon: cross entropy against the normalised positives
        per_anchor = F.cross_entropy(logits[valid], target[valid], reduction="none")
    else:  # DCL, DCLW, weighted positives: log-denominator minus the weighted positive term
        per_anchor = torch.logsumexp(logits[valid], dim=1) - (target[valid] * s[valid]).sum(1)
    if reduction == "none":
        return torch.zeros_like(count).masked_scatter(valid, per_anchor)
    total = per_anchor.sum()
    n_valid = max(int(valid.sum()), 1)
    return (total / n_valid if reduction == "mean" else total).to(anchor.dtype)


def info_nce(
    anchor: Tensor,
    sample: Tensor,
    pos_mask: Tensor | LabelMasks,
    neg_mask: Tensor | None = None,
    temperature: float = 0.1,
    pos_weight: Tensor | None = None,
    neg_weight: Tensor | None = None,
    chunk_size: int | None = None,
    *,
    positives_in_denominator: bool = True,
    reduction: str = "mean",
    fast: bool = True,
) -> Tensor:
    """Mask-based InfoNCE (see the module docstring for the equation).

    Parameters
    ----------
    anchor : Tensor, shape (Na, D)
        Anchor embeddings (normalise them first for cosine similarity).
    sample : Tensor, shape (Ns, D)
        Sample embeddings; may be the same tensor as ``anchor``.
    pos_mask : Tensor of shape (Na, Ns) (bool or float) or LabelMasks
        Who is positive for each anchor; float values are soft positive weights that also
        normalise the positive term. ``LabelMasks`` builds masks chunk by chunk from labels.
    neg_mask : Tensor, shape (Na, Ns), optional
        Who is negative. Default: everything not positive (with ``LabelMasks``: everything not
        positive and not the anchor itself). Exclude an anchor's own column yourself when
        passing dense masks over a shared set.
    temperature : float
        Softmax temperature ``tau``.
    pos_weight : Tensor, shape (Na,) or (Na, Ns), optional
        Weight of each positive similarity in the numerator only (DCLW, Yeh et al. 2022).
    neg_weight : Tensor, shape (Na,) or (Na, Ns), optional
        Weight of each negative in the denominator. Weights are constants (no gradient).
    chunk_size : int, optional
        Anchors per block of the fast kernel; ``None`` computes one block. Values and gradients
        do not depend on it; peak memory is ``O(chunk_size x Ns)``. Ignored when ``fast=False``.
    positives_in_denominator : bool
        ``True`` for InfoNCE/NT-Xent/SupCon, ``False`` for decoupled contrastive learning.
    reduction : {"mean", "sum", "none"}
        Mean over anchors that have at least one positive, their sum, or per-anchor losses
        (anchors without positives give 0).
    fast : bool, default True
        ``True``: the chunked kernel with recomputation in backward and, for ``LabelMasks``,
        no ``(Na, Ns)`` mask (see the module docstring). ``False``: the plain PyTorch path
        (dense masks, ``F.cross_entropy`` / ``logsumexp`` and autograd), the same values and
        gradients with ``O(Na x Ns)`` memory; the reference the fast kernel is tested against.

    Returns
    -------
    Tensor
        Scalar, or shape (Na,) with ``reduction="none"``.

    Examples
    --------
    >>> z = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    >>> labels = pair_labels(4)
    >>> masks = LabelMasks(labels, labels, torch.arange(8))
    >>> loss = info_nce(z, z, masks, temperature=0.5)
    >>> plain = info_nce(z, z, masks, temperature=0.5, fast=False)
    >>> torch.allclose(loss, plain)
    True
    """
    if anchor.ndim != 2 or sample.ndim != 2 or anchor.shape[1] != sample.shape[1]:
        raise ValueError(
            f"info_nce: anchor {tuple(anchor.shape)} and sample {tuple(sample.shape)} must be "
            "(Na, D) and (Ns, D) with the same D"
        )
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"info_nce: reduction must be mean, sum or none, not {reduction!r}")
    if temperature <= 0:
        raise ValueError(f"info_nce: temperature must be > 0, got {temperature}")
    shape = (anchor.shape[0], sample.shape[0])
    _check_dense("neg_mask", neg_mask, shape, per_anchor=False)
    _check_dense("pos_weight", pos_weight, shape, per_anchor=True)
    _check_dense("neg_weight", neg_weight, shape, per_anchor=True)
    ct = torch.promote_types(anchor.dtype, torch.float32)  # half inputs reduce in fp32
    pos_weight = None if pos_weight is None else pos_weight.detach()
    neg_weight = None if neg_weight is None else neg_weight.detach()
    chunk = shape[0] if chunk_size is None else int(chunk_size)
    if chunk < 1:
        raise ValueError(f"info_nce: chunk_size must be >= 1, got {chunk_size}")
    if isinstance(pos_mask, LabelMasks) and pos_mask.shape != shape:
        raise ValueError(f"info_nce: LabelMasks cover {pos_mask.shape}, embeddings {shape}")
    if not isinstance(pos_mask, LabelMasks):
        _check_dense("pos_mask", pos_mask, shape, per_anchor=False)
    if not fast:
        if isinstance(pos_mask, LabelMasks):
            pos_d, neg_d = pos_mask.rows(0, shape[0])
            neg_d = neg_d if neg_mask is None else neg_mask
        else:
            pos_d, neg_d = pos_mask.detach(), neg_mask
        return _info_nce_plain(anchor, sample, pos_d, neg_d, 1.0 / float(temperature),
                               pos_weight, neg_weight, positives_in_denominator, reduction, ct)
    if isinstance(pos_mask, LabelMasks):
        structured = neg_mask is None and neg_weight is None and (
            pos_weight is None or pos_weight.ndim == 1)
        if structured:
            plan = _LabelPlan(pos_mask, pos_weight, positives_in_denominator, ct, anchor.device)
        else:  # dense weights or an explicit negative mask: materialise the label masks
            pos_d, neg_d = pos_mask.rows(0, shape[0])
            plan = _DensePlan(pos_d, neg_d if neg_mask is None else neg_mask, pos_weight,
                              neg_weight, positives_in_denominator, ct)
    else:
        plan = _DensePlan(pos_mask.detach(), neg_mask, pos_weight, neg_weight,
                          positives_in_denominator, ct)
    return _InfoNCE.apply(anchor, sample, plan, 1.0 / float(temperature),
                          min(chunk, max(shape[0], 1)), reduction)


def alignment(x: Tensor, y: Tensor, alpha: float = 2.0) -> Tensor:
    """Alignment ``E ||x_i - y_i||^alpha`` of positive pairs (Wang & Isola 2020, eq. 4).

    Parameters
    ----------
    x, y : Tensor, shape (N, D)
        Embeddings of the two views (normalised by the caller).
    """
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"alignment: x {tuple(x.shape)} and y {tuple(y.shape)} must be (N, D)")
    return (x - y).norm(dim=1).pow(alpha).mean()


def uniformity(x: Tensor, t: float = 2.0) -> Tensor:
    """Uniformity ``log E_{i<j} exp(-t ||x_i - x_j||^2)`` (Wang & Isola 2020, eq. 5).

    Parameters
    ----------
    x : Tensor, shape (N, D), N >= 2
    """
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"uniformity: x must be (N, D) with N >= 2, got {tuple(x.shape)}")
    sq = torch.pdist(x, p=2).pow(2)
    return torch.logsumexp(-t * sq, dim=0) - math.log(sq.numel())


def kernel_joint_entropy_loss(c: Tensor, s: Tensor, tau: float = 0.5) -> Tensor:
    """Negative Parzen estimate of the joint entropy of two codes (SepCLR's k-JEM term).

    ``L = mean_i log mean_j K(c_i, c_j) K(s_i, s_j)`` with Gaussian kernels
    ``K(u, v) = exp(-||u - v||^2 / (2 tau))`` (Louiset et al. 2024, "Separating common from
    salient patterns with contrastive representation learning", ICLR, sec. 3.3). It is
    ``-H_hat(c, s)``: minimising it maximises the estimated joint entropy, which together with
    uniform marginals drives the mutual information ``H(c) + H(s) - H(c, s)`` towards zero.
    Computed in log space (log-sum-exp) so that far-apart codes do not underflow.

    Parameters
    ----------
    c : Tensor, shape (N, Dc)
    s : Tensor, shape (N, Ds)
    tau : float
        Kernel bandwidth (the paper uses 0.5).
    """
    if c.ndim != 2 or s.ndim != 2 or c.shape[0] != s.shape[0]:
        raise ValueError(f"kernel_joint_entropy_loss: c {tuple(c.shape)} and s {tuple(s.shape)} "
                         "must be (N, Dc) and (N, Ds)")
    if tau <= 0:
        raise ValueError(f"kernel_joint_entropy_loss: tau must be > 0, got {tau}")
    sq = torch.cdist(c, c).pow(2) + torch.cdist(s, s).pow(2)
    return (torch.logsumexp(-sq / (2 * tau), dim=1) - math.log(c.shape[0])).mean()

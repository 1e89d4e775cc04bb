"""The maths of the contrastive core: one mask-based InfoNCE kernel, alignment and uniformity,
and the image methods' equations (multi-view InfoNCE / DHEL, SwAV's Sinkhorn and swapped
prediction, CACR's attraction and repulsion, feature transformations, AMCL's temperature
regulariser, InfoNCE over precomputed logits).

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
    "info_nce_logits",
    "chunked_logsumexp",
    "multiview_info_nce",
    "multiview_dhel",
    "sinkhorn_knopp",
    "swav_loss",
    "cacr_attraction",
    "cacr_repulsion",
    "positive_extrapolation",
    "negative_interpolation",
    "temperature_regulariser",
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


# --------------------------------------------------------------------------- general logits


def info_nce_logits(
    logits: Tensor,
    pos_mask: Tensor,
    neg_mask: Tensor | None = None,
    *,
    positives_in_denominator: bool = True,
    reduction: str = "mean",
) -> Tensor:
    """The kernel's equation on a precomputed logit matrix ``s_ij`` (already divided by tau).

    For losses whose similarities are not one inner product over one temperature: AMCL's
    pairwise adaptive temperatures (``s_ij = <z_i, z_j> / tau_ij``) and Hydra's class-pair
    gated cosines. ``l_i = -mean_{j in P(i)} s_ij + log sum_{j in D(i)} exp(s_ij)`` with ``D``
    the negatives, plus the positives when ``positives_in_denominator``. Plain autograd,
    ``O(Na x Ns)`` memory (the logits exist anyway).

    Parameters
    ----------
    logits : Tensor, shape (Na, Ns)
    pos_mask : Tensor, shape (Na, Ns), bool
    neg_mask : Tensor, shape (Na, Ns), bool, optional
        Default: everything not positive. Exclude an anchor's own column yourself.
    positives_in_denominator : bool
    reduction : {"mean", "sum", "none"}
        Over anchors with at least one positive (others give 0 with ``"none"``).
    """
    if logits.ndim != 2 or pos_mask.shape != logits.shape:
        raise ValueError(f"info_nce_logits: logits {tuple(logits.shape)} and pos_mask "
                         f"{tuple(pos_mask.shape)} must be the same (Na, Ns)")
    if neg_mask is not None and neg_mask.shape != logits.shape:
        raise ValueError("info_nce_logits: neg_mask must have the shape of logits")
    pos = pos_mask.bool()
    den = ~pos if neg_mask is None else neg_mask.bool() & ~pos
    if positives_in_denominator:
        den = den | pos
    lse = torch.logsumexp(logits.masked_fill(~den, float("-inf")), dim=1)
    count = pos.sum(1)
    valid = count > 0
    pos_mean = (logits * pos).sum(1) / count.clamp_min(1)
    per = torch.where(valid, lse - pos_mean, torch.zeros_like(lse))
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    if reduction != "mean":
        raise ValueError(f"info_nce_logits: reduction must be mean, sum or none: {reduction!r}")
    return per.sum() / valid.sum().clamp_min(1)


def _lse_block(a: Tensor, b: Tensor, inv_tau: float, offset: int, exclude_self: bool) -> Tensor:
    s = torch.mm(a, b.T) * inv_tau
    if exclude_self:
        rows = torch.arange(a.shape[0], device=a.device)
        s = s.index_put((rows, rows + offset), torch.tensor(float("-inf"), dtype=s.dtype,
                                                            device=s.device))
    return torch.logsumexp(s, dim=1)


def chunked_logsumexp(anchor: Tensor, sample: Tensor, temperature: float,
                      exclude_self: bool = False, chunk_size: int | None = None) -> Tensor:
    """``log sum_j exp(<a_i, b_j> / tau)`` per anchor, block by block.

    Each block of ``chunk_size`` anchors is computed under :func:`torch.utils.checkpoint` so that
    backward recomputes the ``(chunk, Ns)`` similarity block instead of storing it: peak memory
    ``O(chunk_size x Ns)`` rather than ``O(Na x Ns)``.

    Parameters
    ----------
    anchor : Tensor, shape (Na, D)
    sample : Tensor, shape (Ns, D)
    temperature : float
    exclude_self : bool
        Drop column ``i`` from row ``i`` (anchors are the first ``Na`` samples).
    chunk_size : int, optional
        ``None``: one block, no recomputation.

    Returns
    -------
    Tensor, shape (Na,)
    """
    from torch.utils.checkpoint import checkpoint

    n_a = anchor.shape[0]
    inv_tau = 1.0 / float(temperature)
    if chunk_size is None or chunk_size >= n_a:
        return _lse_block(anchor, sample, inv_tau, 0, exclude_self)
    outs = []
    for start in range(0, n_a, int(chunk_size)):
        stop = min(start + int(chunk_size), n_a)
        outs.append(checkpoint(_lse_block, anchor[start:stop], sample, inv_tau, start,
                               exclude_self, use_reentrant=False))
    return torch.cat(outs)


# --------------------------------------------------------------------------- multi-view


def _check_views(name: str, views: Tensor) -> None:
    if views.ndim != 3 or views.shape[0] < 2 or views.shape[1] < 2:
        raise ValueError(f"{name}: views must be (M, N, D) with M >= 2 views and N >= 2 items, "
                         f"got {tuple(views.shape)}")


def _pair_logits(views: Tensor, inv_tau: float) -> Tensor:
    """``<u_il, u_im> / tau`` for every item and ordered view pair: (N, M, M), O(M^2 N D)."""
    return torch.einsum("lnd,mnd->nlm", views, views) * inv_tau


def multiview_info_nce(views: Tensor, temperature: float = 0.5,
                       chunk_size: int | None = None) -> Tensor:
    """MV-InfoNCE (Koromilas et al. 2025, "Towards Scalable Multi-View Contrastive Learning",
    arXiv:2507.06979, the multi-view InfoNCE of sec. 3).

    One term per sample and view over all view pairs of that sample:

    .. math::

        \\ell_{il} = -\\log \\frac{\\sum_{l' \\ne m'} e^{u_{il'} \\cdot u_{im'} / \\tau}}
                          {\\sum_{(m, j) \\ne (l, i)} e^{u_{il} \\cdot u_{jm} / \\tau}},
        \\qquad L = \\frac{1}{MN} \\sum_{i, l} \\ell_{il}

    The numerator sums over the ``M (M - 1)`` ordered view pairs of item ``i`` (as the authors'
    code, ``2 x`` the upper triangle); the denominator over every other embedding of the batch.
    With ``M = 2`` this is NT-Xent minus ``log 2``. Computed in log space: the numerator as a
    ``logsumexp`` over the ``(N, M, M)`` pair logits, the denominator with
    :func:`chunked_logsumexp` (memory ``O(chunk x M N)``).

    Parameters
    ----------
    views : Tensor, shape (M, N, D)
        L2-normalised embeddings of ``M >= 2`` views of ``N`` items.
    temperature : float
        ``tau`` (0.5, the research note's default; the authors' code defaults to 0.2-1).
    chunk_size : int, optional
        Anchors per block of the denominator.
    """
    _check_views("multiview_info_nce", views)
    m, n, d = views.shape
    inv_tau = 1.0 / float(temperature)
    pl = _pair_logits(views, inv_tau)
    off = ~torch.eye(m, dtype=torch.bool, device=views.device)
    num = torch.logsumexp(pl[:, off], dim=1)  # (N,)
    flat = views.reshape(m * n, d)
    den = chunked_logsumexp(flat, flat, temperature, exclude_self=True, chunk_size=chunk_size)
    return (den.reshape(m, n) - num[None, :]).mean()


def multiview_dhel(views: Tensor, temperature: float = 0.5,
                   chunk_size: int | None = None) -> Tensor:
    """MV-DHEL (Koromilas et al. 2025, arXiv:2507.06979, multi-view decoupled hyperspherical
    energy loss, sec. 4).

    .. math::

        \\ell_i = -\\log \\frac{\\sum_{l < m} e^{u_{il} \\cdot u_{im} / \\tau}}
                         {\\prod_{l} \\sum_{j \\ne i} e^{u_{il} \\cdot u_{jl} / \\tau}},
        \\qquad L = \\frac{1}{N} \\sum_i \\ell_i

    Alignment over the ``M (M - 1) / 2`` unordered view pairs of item ``i`` (as the authors'
    code); uniformity decoupled per view: the denominator is a product over views of sums
    *within* each view, so in log space a sum of per-view ``logsumexp`` terms. Cost
    ``O(M^2 N D)`` for alignment and ``O(M N^2 D)`` for uniformity; memory ``O(chunk x N)`` per
    block with ``chunk_size``. With ``M = 2`` it is DHEL.

    Parameters
    ----------
    views : Tensor, shape (M, N, D)
        L2-normalised embeddings of ``M >= 2`` views of ``N`` items.
    temperature : float
        ``tau`` (0.5 default here; see the research note).
    chunk_size : int, optional
        Anchors per block of each view's uniformity term.
    """
    _check_views("multiview_dhel", views)
    m, n, d = views.shape
    inv_tau = 1.0 / float(temperature)
    pl = _pair_logits(views, inv_tau)
    upper = torch.triu(torch.ones(m, m, dtype=torch.bool, device=views.device), diagonal=1)
    num = torch.logsumexp(pl[:, upper], dim=1)  # (N,)
    den = sum(chunked_logsumexp(views[v], views[v], temperature, exclude_self=True,
                                chunk_size=chunk_size) for v in range(m))
    return (den - num).mean()


# --------------------------------------------------------------------------- SwAV


@torch.no_grad()
def sinkhorn_knopp(scores: Tensor, iterations: int = 3, epsilon: float = 0.05,
                   gather_distributed: bool = False) -> Tensor:
    """Soft equipartitioned codes by Sinkhorn-Knopp (Caron et al. 2020, "Unsupervised Learning
    of Visual Features by Contrasting Cluster Assignments", NeurIPS, sec. 3.1, eq. 3).

    ``Q = Diag(u) exp(C^T Z / eps) Diag(v)`` scaled so that, over the (global) batch of ``B``
    samples and ``K`` prototypes, every prototype receives mass ``1/K`` and every sample
    ``1/B``; returned with rows summing to 1 (one code per sample). The row sums over
    prototypes are all-reduced across processes when ``gather_distributed`` (as the authors'
    ``distributed_sinkhorn``), so the prototype marginal holds for the global batch.

    Parameters
    ----------
    scores : Tensor, shape (B, K)
        Similarities of samples and prototypes.
    iterations : int
        Sinkhorn iterations (3 in the paper).
    epsilon : float
        Entropic regularisation (0.05 in the paper).
    gather_distributed : bool
        All-reduce the sums over an initialised process group.

    Returns
    -------
    Tensor, shape (B, K)
        Codes ``q`` (no gradient), each row summing to 1.
    """
    import torch.distributed as dist

    world = 1
    if gather_distributed and dist.is_available() and dist.is_initialized():
        world = dist.get_world_size()
    # exp(s / eps) overflows float32 above e^88; a constant offset cancels in the normalisation,
    # so shift the largest exponent down to 60 when (and only when) it is above that. Shifting
    # always (by the max) would push most entries into denormals, which is ~6x slower on CPU.
    q = scores.detach().to(torch.promote_types(scores.dtype, torch.float32)) / epsilon
    top = q.max()
    if world > 1:
        dist.all_reduce(top, op=dist.ReduceOp.MAX)  # one offset for every process
    shift = float(top) - 60.0
    if shift > 0:
        q = q - shift
    q = q.exp_().T  # (K, B)
    total = q.sum()
    if world > 1:
        dist.all_reduce(total)
    q /= total
    k, b = q.shape[0], q.shape[1] * world
    for _ in range(iterations):
        rows = q.sum(dim=1, keepdim=True)
        if world > 1:
            dist.all_reduce(rows)
        q /= rows * k
        q /= q.sum(dim=0, keepdim=True) * b
    return (q * b).T.to(scores.dtype)


def swav_loss(high: list[Tensor], low: list[Tensor], queue: list[Tensor] | None = None,
              temperature: float = 0.1, iterations: int = 3, epsilon: float = 0.05,
              gather_distributed: bool = False) -> Tensor:
    """SwAV swapped prediction over multi-crop (Caron et al. 2020, eq. 1-2 and sec. 3.2).

    For each high-resolution crop ``s`` the codes ``q_s`` come from :func:`sinkhorn_knopp` on
    its scores (with the queue's scores appended, then dropped); every other crop ``t``
    predicts them: ``l(z_t, q_s) = -sum_k q_s^k log softmax(z_t C / tau)^k``. The loss is
    ``1/|H| sum_s 1/(V - 1) sum_{t != s} mean_batch l(z_t, q_s)`` over ``V`` crops.

    Each crop's log-softmax is computed once and reused for every code it predicts.

    Parameters
    ----------
    high : list of Tensor, each (B, K)
        Prototype scores of the high-resolution crops (2 in the paper).
    low : list of Tensor, each (B, K)
        Prototype scores of the low-resolution crops (6 in the paper; may be empty).
    queue : list of Tensor, each (Q, K), optional
        Prototype scores of queued features, one per high-resolution crop.
    temperature : float
        ``tau`` of the prediction softmax (0.1).
    iterations, epsilon, gather_distributed
        See :func:`sinkhorn_knopp`.
    """
    if len(high) < 1 or (len(high) + len(low)) < 2:
        raise ValueError("swav_loss: needs >= 1 high-resolution crop and >= 2 crops in all")
    if queue is not None and len(queue) != len(high):
        raise ValueError("swav_loss: queue needs one score tensor per high-resolution crop")
    crops = list(high) + list(low)
    logp = [F.log_softmax(z / temperature, dim=1) for z in crops]
    total = crops[0].new_zeros(())
    for s, z in enumerate(high):
        scores = z.detach()
        if queue is not None:
            scores = torch.cat([scores, queue[s].detach()])
        q = sinkhorn_knopp(scores, iterations, epsilon, gather_distributed)[: z.shape[0]]
        sub = sum(-(q * logp[t]).sum(dim=1).mean() for t in range(len(crops)) if t != s)
        total = total + sub / (len(crops) - 1)
    return total / len(high)


# --------------------------------------------------------------------------- CACR


def _sq_dist(a: Tensor, b: Tensor) -> Tensor:
    """``||a_i - b_j||^2`` (Na, Nb) by the expansion, clamped at 0."""
    return (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)


def cacr_attraction(views: Tensor, tau_pos: float = 1.0, alpha: float = 1.0) -> Tensor:
    """CACR's contrastive attraction (Zheng et al. 2021, "Contrastive Attraction and
    Contrastive Repulsion for Representation Learning", TMLR 2023 / arXiv:2105.03746, sec. 3,
    the CA term; equation numbers not checked).

    Each view ``x`` of item ``i`` is a query and the other ``M - 1`` views its positives; the
    cost ``c = alpha ||f(x) - f(x+)||^2`` is averaged under the conditional distribution
    ``pi+(x+ | x) = softmax_{x+}(tau_pos ||f(x) - f(x+)||^2)``, which puts more weight on the
    *farther* positives. As the authors' code, gradient flows through ``pi+`` too.

    Parameters
    ----------
    views : Tensor, shape (M, N, D)
        ``M >= 2`` views (1 query + positives; the paper uses 4 positives, ``M = 5``).
    tau_pos : float
        ``tau+`` (1.0).
    alpha : float
        Scale of the attraction cost (1.0).

    Returns
    -------
    Tensor
        Scalar: mean over queries and items of ``sum_{x+} pi+ c``.
    """
    _check_views("cacr_attraction", views)
    m = views.shape[0]
    d2 = (views[:, None] - views[None, :]).pow(2).sum(-1)  # (M, M, N), O(M^2 N D)
    off = ~torch.eye(m, dtype=torch.bool, device=views.device)
    d2 = d2[off].reshape(m, m - 1, -1)  # query view, positive view, item
    w = torch.softmax(tau_pos * d2, dim=1)
    return (alpha * d2 * w).sum(1).mean()


def cacr_repulsion(views: Tensor, tau_neg: float = 1.0, beta: float = 1.0) -> Tensor:
    """CACR's contrastive repulsion (Zheng et al. 2021, sec. 3, the CR term).

    For every unordered pair of views ``(a, b)`` and item ``i``, the negatives are the other
    items ``j != i`` of view ``b``; the cost ``-beta ||f(x_i^a) - f(x_j^b)||^2`` is averaged
    under ``pi-(x- | x) = softmax_j(-tau_neg ||f(x_i^a) - f(x_j^b)||^2)``, which puts more weight
    on the *closer* negatives. Mean over items, then over view pairs (as the authors' code).

    Parameters
    ----------
    views : Tensor, shape (M, N, D)
    tau_neg : float
        ``tau-`` (1.0 in the authors' CIFAR scripts; 0.9-2.0 in the paper's ablations).
    beta : float
        Scale of the repulsion cost (1.0).
    """
    _check_views("cacr_repulsion", views)
    m, n, _ = views.shape
    eye = torch.eye(n, dtype=torch.bool, device=views.device)
    terms = []
    for a in range(m):
        for b in range(a + 1, m):
            d2 = _sq_dist(views[a], views[b]).masked_fill(eye, 0.0)
            logits = (-tau_neg * d2).masked_fill(eye, float("-inf"))
            w = torch.softmax(logits, dim=1)
            terms.append((-beta * d2 * w).sum(1).mean())
    return torch.stack(terms).mean()


# --------------------------------------------------------------------------- feature transforms


def positive_extrapolation(q: Tensor, k: Tensor, lam: Tensor) -> tuple[Tensor, Tensor]:
    """Positive extrapolation (Zhu et al. 2021, "Improving Contrastive Learning by Visualizing
    Feature Transformation", ICCV, arXiv:2108.02982, sec. 4, "positive extrapolation").

    ``q_hat = lam q + (1 - lam) k`` and ``k_hat = lam k + (1 - lam) q`` with ``lam >= 1``
    (``lam ~ Beta(2, 2) + 1``): the two positives are pushed apart, giving harder positives.

    Parameters
    ----------
    q, k : Tensor, shape (N, D)
    lam : Tensor, shape (N, D), (N, 1) or ()
    """
    return lam * q + (1 - lam) * k, lam * k + (1 - lam) * q


def negative_interpolation(neg: Tensor, mu: Tensor, perm: Tensor) -> Tensor:
    """Negative interpolation (Zhu et al. 2021, sec. 4, "negative interpolation"):
    ``n_hat = mu n + (1 - mu) n[perm]`` with ``mu ~ Beta(1.6, 1.6)``, mixing each negative with a
    random other one for more diverse negatives.

    Parameters
    ----------
    neg : Tensor, shape (K, D)
    mu : Tensor, shape (K, D), (K, 1) or ()
    perm : Tensor, shape (K,), a permutation of ``range(K)``
    """
    return mu * neg + (1 - mu) * neg[perm]


# --------------------------------------------------------------------------- AMCL


def temperature_regulariser(tau: Tensor, dim: int, beta: float = 0.1) -> Tensor:
    """AMCL's temperature regulariser ``beta [ (d/2) log tau + 1/tau ]``, averaged
    (Wang, Koniusz, Gedeon, Zheng, "Adaptive Multi-head Contrastive Learning", ECCV 2024,
    sec. 4, the regulariser that keeps the adaptive temperatures from ill solutions; as given
    in the research note, equation number not checked). Per pair it is minimal at
    ``tau = 2/d``.

    Parameters
    ----------
    tau : Tensor, any shape, > 0
    dim : int
        Embedding dimension ``d``.
    beta : float
        Weight (0.1).
    """
    return beta * (0.5 * dim * torch.log(tau) + 1.0 / tau).mean()

"""Losses for the co-trained multi-task dual-path network of Das et al. (arXiv:2309.12970).

Stage 1 (supervised) trains both paths, their fusion and the auxiliary gland/distance heads with
:class:`DualPathLoss`; stage 2 (co-training) adds :func:`consistency_loss` between the two paths
on labelled and unlabelled volumes (:class:`CoTrainingLoss`).

References
----------
.. [1] Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using
   co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970.
.. [2] Blum, Mitchell, "Combining labeled and unlabeled data with co-training", COLT 1998.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from scipy import ndimage
from torch import Tensor, nn

__all__ = [
    "CoTrainingLoss",
    "DualPathLoss",
    "ZoneDiceCE",
    "balance_weights",
    "consistency_loss",
    "signed_distance",
    "sigmoid_rampup",
]


def _sdf_3d(mask: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    if not mask.any() or mask.all():
        return np.zeros(mask.shape, dtype=np.float32)
    outside = ndimage.distance_transform_edt(~mask, sampling=spacing)
    inside = ndimage.distance_transform_edt(mask, sampling=spacing)
    return (outside - inside).astype(np.float32)


def signed_distance(
    labels: np.ndarray | Tensor, spacing: Sequence[float] = (0.5, 0.5, 3.0)
) -> np.ndarray | Tensor:
    """Signed Euclidean distance (mm) to the surface of the gland ``labels > 0``.

    Sign convention: negative inside the gland, positive outside. A gland voxel's value is minus
    its distance to the nearest background voxel centre; a background voxel's value is its
    distance to the nearest gland voxel centre (so no voxel is exactly 0, and the centre of a cube
    of ``2h + 1`` voxels has ``-(h + 1)`` voxel widths). Volumes with no gland or no background
    give zeros.

    Parameters
    ----------
    labels
        Label map; the last three axes are spatial ``(X, Y, Z)``; any leading axes (e.g.
        ``(B, 1)``) are treated independently.
    spacing
        Voxel size in mm along ``(X, Y, Z)``.

    Returns
    -------
    numpy.ndarray or torch.Tensor
        float32, same shape (and for tensors, same device) as ``labels``.

    References
    ----------
    .. [1] Das, Ghosh, Stober, arXiv:2309.12970, 2023 (distance-map auxiliary task).
    """
    if len(spacing) != 3:
        raise ValueError(f"spacing must have three entries, got {spacing}")
    is_tensor = isinstance(labels, Tensor)
    arr = labels.detach().cpu().numpy() if is_tensor else np.asarray(labels)
    if arr.ndim < 3:
        raise ValueError(f"labels need at least 3 spatial axes, got shape {arr.shape}")
    mask = arr > 0
    flat = mask.reshape((-1, *mask.shape[-3:]))
    out = np.stack([_sdf_3d(m, spacing) for m in flat]).reshape(mask.shape)
    if is_tensor:
        return torch.from_numpy(out).to(labels.device)
    return out


def consistency_loss(logits_a: Tensor, logits_b: Tensor) -> Tensor:
    """Mean squared difference between the two paths' softmax probabilities (class axis 1).

    Symmetric, zero for identical outputs; gradients flow into both paths (each teaches the
    other, as in co-training [2]_).

    Parameters
    ----------
    logits_a, logits_b
        Logits of the same shape ``(B, K, ...)``.

    Returns
    -------
    torch.Tensor
        Scalar.

    References
    ----------
    .. [1] Das, Ghosh, Stober, arXiv:2309.12970, 2023.
    .. [2] Blum, Mitchell, COLT 1998.
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"shape mismatch: {tuple(logits_a.shape)} vs {tuple(logits_b.shape)}")
    return (logits_a.softmax(dim=1) - logits_b.softmax(dim=1)).pow(2).mean()


def balance_weights(
    labels: Tensor, n_classes: int = 5, *, power: float = 0.5, cap: float = 30.0
) -> Tensor:
    """Cross-entropy class weights ``min(cap, (f_max / f_k) ** power)`` from label frequencies.

    Background fills ~90 % of a prostate crop and the DPU ~0.1 %, so unweighted CE barely
    sees the small zones, and softmax Dice alone stalls on a class whose probability has
    collapsed to ~0 early on (its gradient through the softmax vanishes). Square-root inverse
    frequency, capped, restores a usable CE signal without letting one tiny class dominate.

    Parameters
    ----------
    labels
        Integer labels of the training set (negative values, i.e. unlabelled rows, ignored).
    n_classes
        Number of classes.
    power, cap
        Exponent of the inverse frequency ratio and upper bound of a weight.

    Returns
    -------
    torch.Tensor
        ``(n_classes,)`` float weights, 1 for the most frequent class and for absent classes.
    """
    y = labels[labels >= 0].long().flatten()
    counts = torch.bincount(y, minlength=n_classes)[:n_classes].double()
    w = torch.ones(n_classes, dtype=torch.float64)
    present = counts > 0
    if present.any():
        w[present] = (counts.max() / counts[present]).pow(power).clamp(max=cap)
    return w.float()


class ZoneDiceCE(nn.Module):
    """Dice (foreground classes only, optionally pooled over the batch) + cross-entropy.

    Dice leaves the background out so the huge background does not dilute the zone terms; batch
    Dice pools each class over the batch, which keeps a tiny class such as the DPU from giving a
    noisy (or undefined) per-volume Dice. ``class_weight`` scales both parts per class (a path's
    preference for its zone group); ``ce_weight`` scales the CE part only (frequency balance,
    see :func:`balance_weights`), leaving the Dice part, which is already size-invariant, alone.

    Parameters
    ----------
    n_classes
        Number of classes (background included).
    class_weight, ce_weight
        ``(n_classes,)`` weights or ``None`` (all 1).
    batch
        Pool Dice over the batch (MONAI ``DiceLoss(batch=True)``).
    """

    def __init__(
        self,
        n_classes: int = 5,
        *,
        class_weight: Tensor | Sequence[float] | None = None,
        ce_weight: Tensor | Sequence[float] | None = None,
        batch: bool = True,
    ) -> None:
        super().__init__()
        cw = torch.ones(n_classes) if class_weight is None else torch.as_tensor(class_weight)
        bw = torch.ones(n_classes) if ce_weight is None else torch.as_tensor(ce_weight)
        if cw.shape != (n_classes,) or bw.shape != (n_classes,):
            raise ValueError(f"class weights need {n_classes} entries")
        self.dice = DiceLoss(
            include_background=False,
            to_onehot_y=True,
            softmax=True,
            batch=batch,
            weight=None if class_weight is None else cw[1:].float(),
        )
        self.register_buffer("ce_weight", (cw * bw).float(), persistent=False)

    def forward(self, logits: Tensor, labels: Tensor) -> Tensor:
        """Loss of ``(B, K, ...)`` logits against ``(B, 1, ...)`` integer labels."""
        ce = F.cross_entropy(logits, labels[:, 0].long(), weight=self.ce_weight.to(logits.dtype))
        return self.dice(logits, labels) + ce


class DualPathLoss(nn.Module):
    """Stage-1 supervised loss of the multi-task dual-path network [1]_.

    ``loss = dice_ce(a; w_A) + dice_ce(b; w_B) + w_fused * dice_ce(fused)
    + w_gland * BCE(gland, labels > 0) + w_sdf * smoothL1(sdf, signed_distance / sdf_scale)``.

    Every term named ``dice_ce`` is a :class:`ZoneDiceCE`: MONAI softmax Dice without the
    background channel, by default pooled over the batch, plus cross-entropy, optionally
    frequency-balanced (``ce_weight``, e.g. :func:`balance_weights` of the training labels).
    The class weights ``w_A``/``w_B`` (applied to the CE and the Dice part) are 1 for background
    and the path's own zone group and ``other_weight`` (0.5) for the other group: each path
    still predicts every class, so it never learns to ignore a zone, but leans toward its own.
    The fused prediction, which is what inference uses, is supervised directly with the same
    Dice + CE and no group weights.

    Parameters
    ----------
    n_classes
        Number of classes (background included).
    groups
        Label codes path A and path B specialise in (PZ+DPU, TZ+AFS by default).
    other_weight
        Class weight in ``(0, 1]`` of the zones outside a path's group.
    w_fused, w_gland, w_sdf
        Weights of the fused-segmentation and the two auxiliary terms.
    batch_dice
        Pool the Dice of each class over the batch.
    ce_weight
        Frequency-balancing weights of the CE parts (``None``: all 1).
    spacing
        Voxel size (mm) used when the distance target has to be computed from the labels.
    sdf_scale
        mm per unit of the ``"sdf"`` output (the target is ``signed_distance / sdf_scale``).

    References
    ----------
    .. [1] Das, Ghosh, Stober, arXiv:2309.12970, 2023.
    """

    def __init__(
        self,
        n_classes: int = 5,
        *,
        groups: tuple[Sequence[int], Sequence[int]] = ((1, 3), (2, 4)),
        other_weight: float = 0.5,
        w_fused: float = 1.0,
        w_gland: float = 0.5,
        w_sdf: float = 0.5,
        batch_dice: bool = True,
        ce_weight: Tensor | Sequence[float] | None = None,
        spacing: Sequence[float] = (0.5, 0.5, 3.0),
        sdf_scale: float = 10.0,
    ) -> None:
        super().__init__()
        if not 0.0 < other_weight <= 1.0:
            raise ValueError(f"other_weight must be in (0, 1], got {other_weight}")
        self.n_classes = n_classes
        self.spacing = tuple(float(s) for s in spacing)
        self.sdf_scale = float(sdf_scale)
        self.w_fused, self.w_gland, self.w_sdf = float(w_fused), float(w_gland), float(w_sdf)
        weights = []
        for own, other in (groups, groups[::-1]):
            w = torch.ones(n_classes)
            w[[int(c) for c in other]] = other_weight
            w[[int(c) for c in own]] = 1.0
            weights.append(w)
        kw = {"ce_weight": ce_weight, "batch": batch_dice}
        self.dice_ce_a = ZoneDiceCE(n_classes, class_weight=weights[0], **kw)
        self.dice_ce_b = ZoneDiceCE(n_classes, class_weight=weights[1], **kw)
        self.dice_ce = ZoneDiceCE(n_classes, **kw)

    def forward(
        self, out: dict[str, Tensor], labels: Tensor, sdf: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Compute the loss.

        Parameters
        ----------
        out
            Output of :class:`medcl.pirads.model.DualPathNet` (keys ``a, b, fused, gland, sdf``).
        labels
            Integer labels ``(B, 1, X, Y, Z)``.
        sdf
            Signed distance in mm ``(B, 1, X, Y, Z)``; computed from ``labels`` when ``None``
            (a Euclidean distance transform per volume on the CPU, every call: training passes
            the targets cached once per case, :func:`medcl.pirads.train.distance_targets`).

        Returns
        -------
        dict of str to Tensor
            ``"loss"`` and the unweighted terms ``"a"``, ``"b"``, ``"fused"``, ``"gland"``,
            ``"sdf"``.
        """
        labels = labels.long()
        if sdf is None:
            sdf = signed_distance(labels, self.spacing)
        target_sdf = sdf.to(out["sdf"].dtype) / self.sdf_scale
        gland = (labels > 0).to(out["gland"].dtype)
        terms = {
            "a": self.dice_ce_a(out["a"], labels),
            "b": self.dice_ce_b(out["b"], labels),
            "fused": self.dice_ce(out["fused"], labels),
            "gland": F.binary_cross_entropy_with_logits(out["gland"], gland),
            "sdf": F.smooth_l1_loss(out["sdf"], target_sdf),
        }
        terms["loss"] = (
            terms["a"]
            + terms["b"]
            + self.w_fused * terms["fused"]
            + self.w_gland * terms["gland"]
            + self.w_sdf * terms["sdf"]
        )
        return terms


def sigmoid_rampup(step: int, length: int) -> float:
    """Ramp-up factor ``exp(-5 (1 - t)^2)``, ``t = min(step / length, 1)``; 1 when ``length <= 0``.

    The usual schedule for a consistency weight (Laine & Aila, ICLR 2017): the branches first
    re-fit the labels at the new learning phase before being asked to agree.

    Parameters
    ----------
    step
        Optimiser steps taken so far in the co-training stage.
    length
        Steps until the full weight is reached.

    Returns
    -------
    float
        In ``(0, 1]``.
    """
    if length <= 0:
        return 1.0
    t = min(max(step, 0) / length, 1.0)
    return float(np.exp(-5.0 * (1.0 - t) ** 2))


def _select(out: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in out.items()}


class CoTrainingLoss(nn.Module):
    """Stage-2 co-training loss [1]_: supervised loss on labelled rows + path consistency on all.

    ``loss = supervised(labelled rows) + w_cons * consistency_loss(a, b)`` over every row of the
    batch. A row is unlabelled when ``labels`` is ``None`` (the whole batch) or when all of that
    row's labels are negative (e.g. filled with ``-1``); unlabelled rows contribute only to the
    consistency term. The supervised terms stay on for every labelled row, so co-training cannot
    trade a zone away for agreement. When no row is labelled they are reported as 0. The
    training loop ramps ``w_cons`` up with :func:`sigmoid_rampup` through the ``w_cons``
    argument of :meth:`forward`.

    Parameters
    ----------
    supervised
        The stage-1 loss; a default :class:`DualPathLoss` when ``None``.
    w_cons
        Weight of the consistency term.

    References
    ----------
    .. [1] Das, Ghosh, Stober, arXiv:2309.12970, 2023.
    .. [2] Blum, Mitchell, COLT 1998.
    """

    def __init__(self, supervised: DualPathLoss | None = None, *, w_cons: float = 1.0) -> None:
        super().__init__()
        self.supervised = supervised if supervised is not None else DualPathLoss()
        self.w_cons = float(w_cons)

    def forward(
        self,
        out: dict[str, Tensor],
        labels: Tensor | None,
        sdf: Tensor | None = None,
        *,
        w_cons: float | None = None,
    ) -> dict[str, Tensor]:
        """Compute the loss.

        Parameters
        ----------
        out
            Output of :class:`medcl.pirads.model.DualPathNet`.
        labels
            ``(B, 1, X, Y, Z)`` integer labels, rows all ``< 0`` for unlabelled volumes, or
            ``None`` when no volume is labelled.
        sdf
            Optional signed distance (mm) matching ``labels``.
        w_cons
            Consistency weight for this call (e.g. ramped up); the constructor's when ``None``.

        Returns
        -------
        dict of str to Tensor
            ``"loss"``, ``"consistency"``, ``"w_cons"``, ``"supervised"`` and the supervised
            terms.
        """
        cons = consistency_loss(out["a"], out["b"])
        zero = cons.new_zeros(())
        result: dict[str, Tensor] = {k: zero for k in ("a", "b", "fused", "gland", "sdf")}
        result["supervised"] = zero
        if labels is not None:
            rows = (labels.reshape(labels.shape[0], -1) >= 0).any(dim=1)
            if bool(rows.any()):
                sup = self.supervised(
                    _select(out, rows), labels[rows], None if sdf is None else sdf[rows]
                )
                result.update({k: v for k, v in sup.items() if k != "loss"})
                result["supervised"] = sup["loss"]
        weight = self.w_cons if w_cons is None else float(w_cons)
        result["consistency"] = cons
        result["w_cons"] = cons.new_tensor(weight)
        result["loss"] = result["supervised"] + weight * cons
        return result

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
from monai.losses import DiceCELoss
from scipy import ndimage
from torch import Tensor, nn

__all__ = ["CoTrainingLoss", "DualPathLoss", "consistency_loss", "signed_distance"]


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


class DualPathLoss(nn.Module):
    """Stage-1 supervised loss of the multi-task dual-path network [1]_.

    ``loss = dice_ce(a; w_A) + dice_ce(b; w_B) + w_fused * dice_ce(fused)
    + w_gland * BCE(gland, labels > 0) + w_sdf * smoothL1(sdf, signed_distance / sdf_scale)``,
    where each :class:`monai.losses.DiceCELoss` uses ``to_onehot_y=True, softmax=True`` and the
    class weights ``w_A``/``w_B`` are ``group_weight`` (2.0) for the path's own zone group and
    1.0 for every other class (applied to both the CE and the Dice term); the fused term is
    unweighted.

    Parameters
    ----------
    n_classes
        Number of classes (background included).
    groups
        Label codes path A and path B specialise in (PZ+DPU, TZ+AFS by default).
    group_weight
        Class weight of a path's own group.
    w_fused, w_gland, w_sdf
        Weights of the fused-segmentation and the two auxiliary terms.
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
        group_weight: float = 2.0,
        w_fused: float = 1.0,
        w_gland: float = 0.5,
        w_sdf: float = 0.5,
        spacing: Sequence[float] = (0.5, 0.5, 3.0),
        sdf_scale: float = 10.0,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.spacing = tuple(float(s) for s in spacing)
        self.sdf_scale = float(sdf_scale)
        self.w_fused, self.w_gland, self.w_sdf = float(w_fused), float(w_gland), float(w_sdf)
        weights = []
        for group in groups:
            w = torch.ones(n_classes)
            w[[int(c) for c in group]] = group_weight
            weights.append(w)
        self.dice_ce_a = DiceCELoss(to_onehot_y=True, softmax=True, weight=weights[0])
        self.dice_ce_b = DiceCELoss(to_onehot_y=True, softmax=True, weight=weights[1])
        self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)

    def forward(
        self, out: dict[str, Tensor], labels: Tensor, sdf: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Compute the loss.

        Parameters
        ----------
        out
            Output of :class:`pirads.model.DualPathNet` (keys ``a, b, fused, gland, sdf``).
        labels
            Integer labels ``(B, 1, X, Y, Z)``.
        sdf
            Signed distance in mm ``(B, 1, X, Y, Z)``; computed from ``labels`` when ``None``.

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


def _select(out: dict[str, Tensor], rows: Tensor) -> dict[str, Tensor]:
    return {k: v[rows] for k, v in out.items()}


class CoTrainingLoss(nn.Module):
    """Stage-2 co-training loss [1]_: supervised loss on labelled rows + path consistency on all.

    ``loss = supervised(labelled rows) + w_cons * consistency_loss(a, b)`` over every row of the
    batch. A row is unlabelled when ``labels`` is ``None`` (the whole batch) or when all of that
    row's labels are negative (e.g. filled with ``-1``); unlabelled rows contribute only to the
    consistency term. When no row is labelled the supervised terms are reported as 0.

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
        self, out: dict[str, Tensor], labels: Tensor | None, sdf: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Compute the loss.

        Parameters
        ----------
        out
            Output of :class:`pirads.model.DualPathNet`.
        labels
            ``(B, 1, X, Y, Z)`` integer labels, rows all ``< 0`` for unlabelled volumes, or
            ``None`` when no volume is labelled.
        sdf
            Optional signed distance (mm) matching ``labels``.

        Returns
        -------
        dict of str to Tensor
            ``"loss"``, ``"consistency"``, ``"supervised"`` and the supervised terms.
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
        result["consistency"] = cons
        result["loss"] = result["supervised"] + self.w_cons * cons
        return result

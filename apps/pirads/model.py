"""Networks for PI-RADS v2 prostate-zone segmentation: an anisotropic 3D U-Net and a dual path.

Labels follow the paper: 0 background, 1 PZ (peripheral zone), 2 TZ (transition zone), 3 DPU
(distal prostatic urethra), 4 AFS (anterior fibromuscular stroma). Tensors are ``(B, C, X, Y, Z)``
with ``Z`` the thick (superior-inferior) axis of 0.5 x 0.5 x 3.0 mm volumes.

References
----------
.. [1] Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using
   co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970.
.. [2] Meyer et al., "Towards Patient-Individual PI-Rads v2 Sector Map: CNN for Automatic
   Segmentation of Prostatic Zones from T2-Weighted MRI", ISBI 2019 (anisotropic 3D U-Net,
   16 -> 256 filters, in-plane pooling before through-plane pooling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.nets import DynUNet
from torch import Tensor, nn

__all__ = [
    "ANISOTROPIC_KERNELS",
    "ANISOTROPIC_STRIDES",
    "DualPathNet",
    "SinglePathNet",
    "anisotropic_unet",
    "required_divisor",
]

#: Convolution kernels per level: in-plane only (3x3x1) on the two finest levels, where a voxel is
#: 6x thicker than wide, then isotropic 3x3x3 once the in-plane spacing has caught up.
ANISOTROPIC_KERNELS: tuple[tuple[int, int, int], ...] = (
    (3, 3, 1),
    (3, 3, 1),
    (3, 3, 3),
    (3, 3, 3),
    (3, 3, 3),
)

#: Down-sampling per level (the first entry is the stem and never down-samples). In-plane
#: pooling comes first: 0.5x0.5x3 mm -> 1x1x3 -> 2x2x3 -> 4x4x6 -> 4x4x12 mm. The total factor is
#: 8 in-plane and 4 through-plane, so the default crop 168x168x32 (168 = 8 * 21, 32 = 4 * 8) and
#: the small test crops 64x64x16 and 32x32x8 all pass through without padding. Meyer et al. [2]
#: pool 2x2x1 then 2x2x2; a fourth in-plane halving would need 168 to be a multiple of 16, so the
#: deepest level here halves only z.
ANISOTROPIC_STRIDES: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1),
    (2, 2, 1),
    (2, 2, 1),
    (2, 2, 2),
    (1, 1, 2),
)


def required_divisor(strides: Sequence[Sequence[int]] = ANISOTROPIC_STRIDES) -> tuple[int, ...]:
    """Return the per-axis factor an input's spatial size must be a multiple of.

    Parameters
    ----------
    strides
        Per-level strides as given to :class:`monai.networks.nets.DynUNet`.

    Returns
    -------
    tuple of int
        The product of the strides along each axis.
    """
    out = [1] * len(strides[0])
    for level in strides:
        for axis, s in enumerate(level):
            out[axis] *= int(s)
    return tuple(out)


def anisotropic_unet(
    in_channels: int = 1,
    out_channels: int = 5,
    *,
    filters: Sequence[int] = (16, 32, 64, 128, 256),
    spatial_dims: int = 3,
    kernels: Sequence[Sequence[int]] = ANISOTROPIC_KERNELS,
    strides: Sequence[Sequence[int]] = ANISOTROPIC_STRIDES,
    res_block: bool = False,
) -> DynUNet:
    """Build the anisotropic 3D U-Net backbone used by both paths of [1]_ (after [2]_).

    Parameters
    ----------
    in_channels, out_channels
        Input channels (1 for T2w) and output channels (5 zone classes by default).
    filters
        Feature maps per level, one per entry of ``kernels``/``strides``.
    spatial_dims
        Must be 3 (the kernels and strides are 3D).
    kernels, strides
        Per-level kernel sizes and strides; see :data:`ANISOTROPIC_KERNELS` and
        :data:`ANISOTROPIC_STRIDES` for the defaults and why. Spatial input sizes must be
        multiples of :func:`required_divisor` of ``strides``.
    res_block
        Use residual blocks in DynUNet.

    Returns
    -------
    monai.networks.nets.DynUNet
        The network, producing ``out_channels`` logits at input resolution.

    References
    ----------
    .. [1] Das, Ghosh, Stober, arXiv:2309.12970, 2023.
    .. [2] Meyer et al., ISBI 2019.
    """
    if spatial_dims != 3:
        raise ValueError(f"anisotropic_unet is 3D only, got spatial_dims={spatial_dims}")
    if not len(filters) == len(kernels) == len(strides):
        raise ValueError(
            f"filters ({len(filters)}), kernels ({len(kernels)}) and strides ({len(strides)})"
            " must have one entry per level"
        )
    kernels = [list(k) for k in kernels]
    strides = [list(s) for s in strides]
    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=in_channels,
        out_channels=out_channels,
        kernel_size=kernels,
        strides=strides,
        upsample_kernel_size=strides[1:],
        filters=list(filters),
        res_block=res_block,
    )


def _feature_unet(in_channels: int, filters: Sequence[int], res_block: bool) -> DynUNet:
    """An :func:`anisotropic_unet` returning its last decoder features (``filters[0]``
    channels) instead of logits."""
    net = anisotropic_unet(in_channels, 1, filters=filters, res_block=res_block)
    net.output_block = nn.Identity()
    return net


class DualPathNet(nn.Module):
    """Multi-task dual-path CNN of [1]_: two specialised branches plus gland/distance heads.

    Each path is an :func:`anisotropic_unet` without its output block, so it yields the last
    decoder level's ``filters[0]`` feature maps (already instance-normed and activated); a
    1x1x1 convolution per path, initialised like DynUNet's own output block, predicts *all*
    ``n_classes`` logits. Each path is thus exactly the single-path baseline's network. (A
    second linear 1x1x1 layer stacked on the output block, as before, slows down the learning
    of small classes such as the DPU: a product of two linear maps learns its weakest
    directions last.) Path A specialises in the zone group ``groups[0]`` (PZ
    and DPU by default), path B in ``groups[1]`` (TZ and AFS); the specialisation is imposed by
    the loss (:class:`~.losses.DualPathLoss` weights each path toward its group) and by the
    initial fusion weights below.

    Fusion (``"fused"``) is a learnt per-class convex mix of the two paths' *probabilities*:
    ``p_k = w_k * softmax(a)_k + (1 - w_k) * softmax(b)_k`` with ``w_k = sigmoid(theta_k)``,
    returned as ``log p_k`` (so a softmax over ``"fused"`` gives ``p`` renormalised, and a loss
    with ``softmax=True`` can supervise it directly). ``w_k`` starts at ``specialist_weight`` for
    group A's classes, ``1 - specialist_weight`` for group B's and ``0.5`` for the rest
    (background) and is trained with the fused loss.

    Mixing probabilities rather than logits matters: a path's softmax, hence its own loss and
    the consistency loss, does not see a constant added to all of its logits at a voxel, so that
    offset drifts freely; a logit mix with class-dependent weights turns such drift into a bias
    toward one group and can erase a whole zone from the fused output. The probability mix is
    invariant to it.

    The multi-task auxiliary head reads the concatenated feature maps of both paths
    (``2 * filters[0]`` channels) through one 3x3x1 convolution, instance norm and LeakyReLU and a
    1x1x1 convolution to two channels: the whole-gland logit (``"gland"``) and the signed
    distance to the gland surface (``"sdf"``), linear (no tanh), in units of
    ``mm / sdf_scale`` (10 mm by default), negative inside the gland as in
    :func:`medcl.pirads.losses.signed_distance`.

    Parameters
    ----------
    in_channels, n_classes
        Input channels and number of zone classes (background included).
    filters
        Feature maps per level of each backbone.
    groups
        Label codes each path specialises in (two disjoint groups).
    specialist_weight
        Initial weight in ``[0.5, 1)`` of the specialist path in the fused probabilities of its
        classes.
    res_block
        Use residual blocks in the backbones.

    References
    ----------
    .. [1] Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones
       Using co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 5,
        *,
        filters: Sequence[int] = (16, 32, 64, 128, 256),
        groups: tuple[Sequence[int], Sequence[int]] = ((1, 3), (2, 4)),
        specialist_weight: float = 0.75,
        res_block: bool = False,
    ) -> None:
        super().__init__()
        if len(groups) != 2:
            raise ValueError(f"need two zone groups, got {len(groups)}")
        group_a, group_b = (tuple(int(c) for c in g) for g in groups)
        if set(group_a) & set(group_b):
            raise ValueError(f"zone groups overlap: {group_a} and {group_b}")
        for c in (*group_a, *group_b):
            if not 0 <= c < n_classes:
                raise ValueError(f"label code {c} outside [0, {n_classes})")
        if not 0.5 <= specialist_weight < 1.0:
            raise ValueError(f"specialist_weight must be in [0.5, 1), got {specialist_weight}")
        self.n_classes = n_classes
        self.groups = (group_a, group_b)
        feat = int(filters[0])
        self.backbone_a = _feature_unet(in_channels, filters, res_block)
        self.backbone_b = _feature_unet(in_channels, filters, res_block)
        self.head_a = nn.Conv3d(feat, n_classes, kernel_size=1)
        self.head_b = nn.Conv3d(feat, n_classes, kernel_size=1)
        for head in (self.head_a, self.head_b):
            DynUNet.initialize_weights(head)
        self.aux = nn.Sequential(
            nn.Conv3d(2 * feat, feat, kernel_size=(3, 3, 1), padding=(1, 1, 0)),
            nn.InstanceNorm3d(feat, affine=True),
            nn.LeakyReLU(0.01),
            nn.Conv3d(feat, 2, kernel_size=1),
        )
        w = torch.full((n_classes,), 0.5)
        w[list(group_a)] = specialist_weight
        w[list(group_b)] = 1.0 - specialist_weight
        self.fusion_logit = nn.Parameter(torch.logit(w))

    @property
    def fusion_weight(self) -> Tensor:
        """Current per-class weight ``w_k`` of path A in the fused probabilities, ``(K,)``."""
        return torch.sigmoid(self.fusion_logit)

    def fuse(self, a: Tensor, b: Tensor) -> Tensor:
        """Log of the per-class convex mix of the paths' softmax probabilities (class axis 1)."""
        shape = (1, self.n_classes) + (1,) * (a.ndim - 2)
        log_w = F.logsigmoid(self.fusion_logit).view(shape).to(a.dtype)
        log_1mw = F.logsigmoid(-self.fusion_logit).view(shape).to(a.dtype)
        # logaddexp keeps log(w p_a + (1 - w) p_b) finite where both probabilities underflow
        return torch.logaddexp(log_w + a.log_softmax(dim=1), log_1mw + b.log_softmax(dim=1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Segment ``x`` of shape ``(B, C, X, Y, Z)``.

        Returns
        -------
        dict of str to Tensor
            ``"a"``, ``"b"``: ``(B, n_classes, X, Y, Z)`` logits of each path; ``"fused"``: the
            log fused probabilities, same shape (use it as logits); ``"gland"``:
            ``(B, 1, X, Y, Z)`` whole-gland logit; ``"sdf"``: ``(B, 1, X, Y, Z)`` signed distance
            in ``mm / sdf_scale``.
        """
        fa = self.backbone_a(x)
        fb = self.backbone_b(x)
        a = self.head_a(fa)
        b = self.head_b(fb)
        aux = self.aux(torch.cat([fa, fb], dim=1))
        return {"a": a, "b": b, "fused": self.fuse(a, b), "gland": aux[:, :1], "sdf": aux[:, 1:]}


class SinglePathNet(nn.Module):
    """Single-path baseline: one :func:`anisotropic_unet` with the same filters (Meyer et al.).

    Parameters
    ----------
    in_channels, n_classes
        Input channels and number of zone classes.
    filters
        Feature maps per level.
    res_block
        Use residual blocks.

    References
    ----------
    .. [1] Meyer et al., ISBI 2019; the baseline compared against in Das et al., arXiv:2309.12970.
    """

    def __init__(
        self,
        in_channels: int = 1,
        n_classes: int = 5,
        *,
        filters: Sequence[int] = (16, 32, 64, 128, 256),
        res_block: bool = False,
    ) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.net = anisotropic_unet(in_channels, n_classes, filters=filters, res_block=res_block)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Return ``{"fused": logits}`` with logits of shape ``(B, n_classes, X, Y, Z)``."""
        return {"fused": self.net(x)}

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


class DualPathNet(nn.Module):
    """Multi-task dual-path CNN of [1]_: two specialised branches plus gland/distance heads.

    Each path is an :func:`anisotropic_unet` whose output block yields ``filters[0]`` feature
    maps (followed by a LeakyReLU) instead of class logits; a 1x1x1 convolution per path then
    predicts *all* ``n_classes`` logits. Path A specialises in the zone group ``groups[0]`` (PZ
    and DPU by default), path B in ``groups[1]`` (TZ and AFS); the specialisation is imposed by
    the loss (:class:`pirads.losses.DualPathLoss` up-weights each path's group) and by the fusion
    below.

    Fusion (``"fused"``) mixes logits per class: ``w_k * a_k + (1 - w_k) * b_k`` with
    ``w_k = specialist_weight`` for classes in group A, ``1 - specialist_weight`` for classes in
    group B and ``0.5`` for the rest (background). The mix is fixed, not learnt.

    The multi-task auxiliary head reads the concatenated feature maps of both paths
    (``2 * filters[0]`` channels) through one 3x3x1 convolution, instance norm and LeakyReLU and a
    1x1x1 convolution to two channels: the whole-gland logit (``"gland"``) and the signed
    distance to the gland surface (``"sdf"``), linear (no tanh), in units of
    ``mm / sdf_scale`` (10 mm by default), negative inside the gland as in
    :func:`pirads.losses.signed_distance`.

    Parameters
    ----------
    in_channels, n_classes
        Input channels and number of zone classes (background included).
    filters
        Feature maps per level of each backbone.
    groups
        Label codes each path specialises in (two disjoint groups).
    specialist_weight
        Weight in ``(0.5, 1]`` of the specialist path in the fused logits of its classes.
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
        if not 0.5 <= specialist_weight <= 1.0:
            raise ValueError(f"specialist_weight must be in [0.5, 1], got {specialist_weight}")
        self.n_classes = n_classes
        self.groups = (group_a, group_b)
        feat = int(filters[0])
        self.backbone_a = anisotropic_unet(in_channels, feat, filters=filters, res_block=res_block)
        self.backbone_b = anisotropic_unet(in_channels, feat, filters=filters, res_block=res_block)
        self.act = nn.LeakyReLU(0.01)
        self.head_a = nn.Conv3d(feat, n_classes, kernel_size=1)
        self.head_b = nn.Conv3d(feat, n_classes, kernel_size=1)
        self.aux = nn.Sequential(
            nn.Conv3d(2 * feat, feat, kernel_size=(3, 3, 1), padding=(1, 1, 0)),
            nn.InstanceNorm3d(feat, affine=True),
            nn.LeakyReLU(0.01),
            nn.Conv3d(feat, 2, kernel_size=1),
        )
        w = torch.full((n_classes,), 0.5)
        w[list(group_a)] = specialist_weight
        w[list(group_b)] = 1.0 - specialist_weight
        self.register_buffer("fusion_weight", w.view(1, n_classes, 1, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """Segment ``x`` of shape ``(B, C, X, Y, Z)``.

        Returns
        -------
        dict of str to Tensor
            ``"a"``, ``"b"``, ``"fused"``: ``(B, n_classes, X, Y, Z)`` logits; ``"gland"``:
            ``(B, 1, X, Y, Z)`` whole-gland logit; ``"sdf"``: ``(B, 1, X, Y, Z)`` signed distance
            in ``mm / sdf_scale``.
        """
        fa = self.act(self.backbone_a(x))
        fb = self.act(self.backbone_b(x))
        a = self.head_a(fa)
        b = self.head_b(fb)
        w = self.fusion_weight.to(a.dtype)
        fused = w * a + (1.0 - w) * b
        aux = self.aux(torch.cat([fa, fb], dim=1))
        return {"a": a, "b": b, "fused": fused, "gland": aux[:, :1], "sdf": aux[:, 1:]}


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

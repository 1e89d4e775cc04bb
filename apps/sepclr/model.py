"""Encoders of the SepCLR harness: SepCLR's two-encoder network and the pooled SimCLR baseline.

Each model answers ``represent(x) -> (common, salient)``, the representations that the probes
read (the encoders' pooled features, as in the authors' evaluation), so that SepCLR, SimCLR and
the contrastive VAE are evaluated the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from monai.networks.nets import ResNet
from torch import Tensor, nn

from medcl.contrastive.heads import ProjectionHead


def resnet_encoder(in_channels: int, widths: Sequence[int], spatial_dims: int = 2,
                   stem_stride: int = 2) -> nn.Module:
    """A small MONAI ResNet (basic blocks, one per stage) returning pooled features.

    A 3x3 stem without max pooling suits small images (32-64 px): stride 2 (default) halves the
    resolution once, four times cheaper on the CPU than stride 1 at 32 px. The widths set the
    channels of the four stages (ResNet-18 is ``[64, 128, 256, 512]`` with two blocks per
    stage). Output: ``(N, widths[-1])``.
    """
    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be four positive channel counts, got {list(widths)}")
    return ResNet("basic", [1, 1, 1, 1], list(widths), spatial_dims=spatial_dims,
                  n_input_channels=in_channels, conv1_t_size=3, conv1_t_stride=stem_stride,
                  no_max_pool=True, feed_forward=False)


class SepCLRNet(nn.Module):
    """Common and salient encoders, each with a 2-layer MLP projection head (Louiset et al.
    2024, sec. 4: two encoders + projectors; common codes normalised in the loss, salient codes
    Euclidean)."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64, 128),
                 common_dim: int = 32, salient_dim: int = 32) -> None:
        super().__init__()
        feat = widths[-1]
        self.common_encoder = resnet_encoder(in_channels, widths)
        self.salient_encoder = resnet_encoder(in_channels, widths)
        self.common_head = ProjectionHead(feat, [feat], common_dim)
        self.salient_head = ProjectionHead(feat, [feat], salient_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: (N, C, H, W) -> common codes (N, common_dim), salient codes (N, salient_dim)."""
        return (self.common_head(self.common_encoder(x)),
                self.salient_head(self.salient_encoder(x)))

    @torch.no_grad()
    def represent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.common_encoder(x), self.salient_encoder(x)


class PooledSimCLRNet(nn.Module):
    """Baseline: one encoder trained with NT-Xent on background and target pooled; its feature
    vector is split in two halves read as "common" and "salient" (no mechanism separates them,
    which is the point of the comparison)."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64, 128),
                 common_dim: int = 32, salient_dim: int = 32) -> None:
        super().__init__()
        feat = widths[-1]
        if feat % 2:
            raise ValueError("PooledSimCLRNet needs an even feature width to split in halves")
        self.encoder = resnet_encoder(in_channels, widths)
        self.head = ProjectionHead(feat, [feat], common_dim + salient_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    @torch.no_grad()
    def represent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        half = h.shape[1] // 2
        return h[:, :half], h[:, half:]

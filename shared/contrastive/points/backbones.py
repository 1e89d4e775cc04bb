"""Point backbones in plain PyTorch: PointNet and DGCNN, both returning per-point features.

- :class:`PointNet` (Qi et al. 2017, "PointNet", fig. 2, segmentation network): a shared
  per-point MLP, a global max-pooled feature concatenated back to every point, and a second
  shared MLP. Departure: no input/feature T-Nets (the views are already gravity-aligned and
  the orthogonality regulariser adds nothing to a contrastive probe), batch norm replaced by
  group norm so one cloud per batch trains.
- :class:`DGCNN` (Wang et al. 2019, eq. 7-8): EdgeConv ``x_i' = max_j h([x_i, x_j - x_i])``
  over the ``k`` nearest neighbours in the current feature space (dynamic graph), with the
  neighbours found by the chunked :func:`~medcl.contrastive.points.knn.knn`; the layer outputs
  are concatenated, lifted by a shared MLP and joined with their global max. Same norm change.

Both map ``(B, N, 3)`` to ``(B, N, out_dim)``; :meth:`pool` gives the cloud feature (max and
mean of the per-point features, ``(B, 2 out_dim)``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .knn import knn

__all__ = ["PointNet", "DGCNN", "build_point_backbone"]


def _mlp(dims: list[int], last_act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2 or last_act:
            layers += [_PointNorm(dims[i + 1]), nn.ReLU()]
    return nn.Sequential(*layers)


class _PointNorm(nn.Module):
    """Group norm over channels of ``(..., C)`` features (works for any batch size)."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(min(8, c), c)

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        return self.norm(x.reshape(-1, shape[-1])).reshape(shape)


class _Base(nn.Module):
    out_dim: int

    def pool(self, feats: Tensor) -> Tensor:
        """Cloud feature ``[max_i f_i, mean_i f_i]``: (B, N, D) -> (B, 2D)."""
        return torch.cat([feats.max(1).values, feats.mean(1)], dim=1)


class PointNet(_Base):
    """PointNet segmentation trunk: (B, N, 3) -> (B, N, out_dim)."""

    def __init__(self, width: int = 64, out_dim: int = 64):
        super().__init__()
        self.local = _mlp([3, width, width])
        self.lift = _mlp([width, 2 * width, 4 * width])
        self.head = _mlp([width + 4 * width, 2 * width, out_dim], last_act=False)
        self.out_dim = out_dim

    def forward(self, xyz: Tensor) -> Tensor:
        f = self.local(xyz)
        g = self.lift(f).max(1, keepdim=True).values.expand(-1, xyz.shape[1], -1)
        return self.head(torch.cat([f, g], dim=-1))


class EdgeConv(nn.Module):
    """``x_i' = max_{j in kNN(i)} h([x_i, x_j - x_i])`` (Wang et al. 2019, eq. 7-8)."""

    def __init__(self, c_in: int, c_out: int, k: int, chunk: int = 1024):
        super().__init__()
        self.k, self.chunk = k, chunk
        self.h = _mlp([2 * c_in, c_out])

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        idx = knn(x.detach(), min(self.k, n), chunk=self.chunk)  # (B, N, k)
        nb = torch.gather(x, 1, idx.reshape(b, -1, 1).expand(-1, -1, c)).reshape(b, n, -1, c)
        centre = x.unsqueeze(2).expand_as(nb)
        return self.h(torch.cat([centre, nb - centre], dim=-1)).max(2).values


class DGCNN(_Base):
    """DGCNN segmentation trunk: three EdgeConv layers (dynamic kNN graph), a shared lift and
    the global max joined back to every point. (B, N, 3) -> (B, N, out_dim)."""

    def __init__(self, width: int = 64, out_dim: int = 64, k: int = 16, chunk: int = 1024):
        super().__init__()
        self.convs = nn.ModuleList([EdgeConv(3, width, k, chunk), EdgeConv(width, width, k, chunk),
                                    EdgeConv(width, width, k, chunk)])
        self.lift = _mlp([3 * width, 4 * width])
        self.head = _mlp([3 * width + 4 * width, 2 * width, out_dim], last_act=False)
        self.out_dim = out_dim

    def forward(self, xyz: Tensor) -> Tensor:
        feats, x = [], xyz
        for conv in self.convs:
            x = conv(x)
            feats.append(x)
        f = torch.cat(feats, dim=-1)
        g = self.lift(f).max(1, keepdim=True).values.expand(-1, xyz.shape[1], -1)
        return self.head(torch.cat([f, g], dim=-1))


def build_point_backbone(name: str, width: int = 64, out_dim: int = 64, k: int = 16) -> _Base:
    """``"pointnet"`` or ``"dgcnn"``."""
    if name == "pointnet":
        return PointNet(width, out_dim)
    if name == "dgcnn":
        return DGCNN(width, out_dim, k)
    raise ValueError(f"unknown point backbone {name!r} (pointnet or dgcnn)")

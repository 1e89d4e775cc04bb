"""ST-GCN encoder in plain PyTorch (Yan, Xiong, Lin, "Spatial Temporal Graph Convolutional
Networks for Skeleton-Based Action Recognition", AAAI 2018).

One block (sec. 3.5-3.7): a spatial graph convolution (eq. 10) -- a 1x1 convolution to
``K x C_out`` channels, then ``y_i = sum_k sum_j x_kj A_kj,i (.) M_k`` with the partitioned
adjacency ``A`` (:func:`~.graph.spatial_adjacency`) and a learnable edge-importance mask ``M``
(sec. 3.6, "learnable edge importance weighting") -- then batch norm, ReLU, a ``9 x 1``
temporal convolution (optionally strided), batch norm, dropout, a residual connection and ReLU.

The default widths are those HiCLR (and CrosSCLR / AimCLR before it) pretrain with: the ten
ST-GCN blocks at a quarter of the original width (``hidden = 16``: 16, 16, 16, 16, 32/2,
32, 32, 64/2, 64, ``out_dim = 256``). ``depth="tiny"`` keeps four blocks for CPU runs.
The encoder returns the globally pooled features ``(N, out_dim)`` averaged over persons
(the authors' ``fc`` is the projection head here, :class:`~.hiclr.HiCLR`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["STGCN", "STGCNBlock", "GraphConv"]


class GraphConv(nn.Module):
    """Spatial graph convolution of ST-GCN eq. 10: ``(N, C_in, T, V) -> (N, C_out, T, V)``."""

    def __init__(self, in_channels: int, out_channels: int, kernels: int) -> None:
        super().__init__()
        self.kernels = int(kernels)
        self.conv = nn.Conv2d(in_channels, out_channels * kernels, kernel_size=1)

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        if adjacency.shape[0] != self.kernels:
            raise ValueError(f"GraphConv: adjacency has {adjacency.shape[0]} subsets, "
                             f"expected {self.kernels}")
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.kernels, -1, t, v)
        return torch.einsum("nkctj,kji->ncti", y, adjacency)


class STGCNBlock(nn.Module):
    """Graph convolution + temporal convolution with a residual path (one ST-GCN unit)."""

    def __init__(self, in_channels: int, out_channels: int, kernels: int, stride: int = 1,
                 temporal_kernel: int = 9, dropout: float = 0.0, residual: bool = True) -> None:
        super().__init__()
        if temporal_kernel % 2 != 1:
            raise ValueError("STGCNBlock: temporal_kernel must be odd")
        self.gcn = GraphConv(in_channels, out_channels, kernels)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels), nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, (temporal_kernel, 1), (stride, 1),
                      ((temporal_kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels), nn.Dropout(dropout))
        if not residual:
            self.residual: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                nn.BatchNorm2d(out_channels))
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        res = 0 if self.residual is None else self.residual(x)
        return self.relu(self.tcn(self.gcn(x, adjacency)) + res)


_DEPTHS = {
    # (width multiple of hidden, temporal stride); the last block outputs out_dim
    "stgcn": ((1, 1), (1, 1), (1, 1), (1, 1), (2, 2), (2, 1), (2, 1), (4, 2), (4, 1), (0, 1)),
    "tiny": ((1, 1), (2, 2), (4, 2), (0, 1)),
}


class STGCN(nn.Module):
    """ST-GCN encoder: ``x (N, C, T, V, M) -> features (N, out_dim)``.

    Parameters
    ----------
    adjacency : Tensor, shape (K, V, V)
        Partitioned adjacency (:func:`~.graph.spatial_adjacency`); kept as a buffer.
    in_channels : int
        Coordinates per joint (3 for 3-D, 2 for 2-D keypoints).
    hidden : int
        Width of the first blocks (16 in HiCLR; 64 in the original ST-GCN).
    out_dim : int
        Width of the last block = feature width (256 in HiCLR).
    depth : {"stgcn", "tiny"}
        The ten ST-GCN blocks or four blocks (hidden, 2 hidden /2, 4 hidden /2, out_dim).
    edge_importance : bool
        Learnable edge-importance mask per block.
    dropout : float
        Dropout in the temporal units (HiCLR pretrains with 0.5 in its config, which the
        authors' builder passes only to blocks 2-10).
    """

    def __init__(self, adjacency: Tensor, in_channels: int = 3, hidden: int = 16,
                 out_dim: int = 256, depth: str = "stgcn", temporal_kernel: int = 9,
                 edge_importance: bool = True, dropout: float = 0.0) -> None:
        super().__init__()
        if adjacency.ndim != 3 or adjacency.shape[1] != adjacency.shape[2]:
            raise ValueError(f"STGCN: adjacency must be (K, V, V), got {tuple(adjacency.shape)}")
        if depth not in _DEPTHS:
            raise ValueError(f"STGCN: depth must be one of {sorted(_DEPTHS)}, got {depth!r}")
        self.register_buffer("adjacency", adjacency.float().clone())
        k, v = int(adjacency.shape[0]), int(adjacency.shape[1])
        self.in_channels, self.num_joints, self.out_dim = int(in_channels), v, int(out_dim)
        self.data_bn = nn.BatchNorm1d(in_channels * v)
        blocks, c_in = [], in_channels
        for idx, (mult, stride) in enumerate(_DEPTHS[depth]):
            c_out = out_dim if mult == 0 else mult * hidden
            blocks.append(STGCNBlock(c_in, c_out, k, stride, temporal_kernel,
                                     dropout=0.0 if idx == 0 else dropout, residual=idx > 0))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.importance = nn.ParameterList(
            [nn.Parameter(torch.ones_like(self.adjacency)) for _ in blocks]) \
            if edge_importance else None

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5 or x.shape[1] != self.in_channels or x.shape[3] != self.num_joints:
            raise ValueError(f"STGCN: expected (N, {self.in_channels}, T, {self.num_joints}, M), "
                             f"got {tuple(x.shape)}")
        n, c, t, v, m = x.shape
        x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)  # per-person, per joint-coord BN
        x = self.data_bn(x).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for idx, block in enumerate(self.blocks):
            a = self.adjacency if self.importance is None else self.adjacency * \
                self.importance[idx]
            x = block(x, a)
        return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

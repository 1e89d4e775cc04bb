"""Projection heads: the MLP between an encoder and a contrastive loss.

SimCLR (Chen et al. 2020, sec. 2) maps representations ``h`` to ``z = g(h)`` with a 2-layer MLP
and shows the loss is better applied to ``z`` than ``h``; SimCLR v2 and MoCo v3 add batch
normalisation between layers. :class:`MultiHead` runs several heads on one representation
(e.g. SepCLR's common and salient projections, or multi-head contrast).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class ProjectionHead(nn.Module):
    """MLP ``in_dim -> hidden... -> out_dim`` with ReLU, optional batch norm.

    Parameters
    ----------
    in_dim : int
        Width of the representation ``h``.
    hidden_dims : sequence of int
        Widths of the hidden layers (SimCLR: one hidden layer as wide as ``in_dim``).
    out_dim : int
        Width of the projection ``z``.
    batch_norm : bool
        Batch norm after each hidden linear layer (SimCLR v2 / MoCo v3 style).
    last_batch_norm : bool
        Affine-free batch norm on the output (MoCo v3 projector).

    Examples
    --------
    >>> head = ProjectionHead(512, [512], 128, batch_norm=True)
    >>> z = head(torch.randn(8, 512))    # (8, 128)
    """

    def __init__(self, in_dim: int, hidden_dims: Sequence[int], out_dim: int,
                 batch_norm: bool = False, last_batch_norm: bool = False) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1 or any(h < 1 for h in hidden_dims):
            raise ValueError("ProjectionHead: all widths must be positive")
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden_dims:
            layers.append(nn.Linear(width, h, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU(inplace=True))
            width = h
        layers.append(nn.Linear(width, out_dim, bias=not last_batch_norm))
        if last_batch_norm:
            layers.append(nn.BatchNorm1d(out_dim, affine=False))
        self.net = nn.Sequential(*layers)
        self.in_dim, self.out_dim = in_dim, out_dim

    def forward(self, h: Tensor) -> Tensor:
        """``h``: (N, in_dim) -> (N, out_dim)."""
        if h.ndim != 2 or h.shape[1] != self.in_dim:
            raise ValueError(f"ProjectionHead expects (N, {self.in_dim}), got {tuple(h.shape)}")
        return self.net(h)


class SimCLRHead(ProjectionHead):
    """SimCLR's projector: ``in_dim -> hidden_dim -> ReLU -> out_dim`` (no batch norm)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> None:
        super().__init__(in_dim, [hidden_dim], out_dim)


class MultiHead(nn.ModuleDict):
    """Several named heads on one representation; ``forward`` returns a dict of outputs.

    Examples
    --------
    >>> heads = MultiHead({"common": SimCLRHead(64, 64, 16), "salient": SimCLRHead(64, 64, 16)})
    >>> out = heads(torch.randn(4, 64))   # {"common": (4, 16), "salient": (4, 16)}
    """

    def forward(self, h: Tensor) -> dict[str, Tensor]:
        return {name: head(h) for name, head in self.items()}


class MultiProjectionHeads(nn.Module):
    """``C`` independent projection heads on one representation, outputs stacked (AMCL's
    multi-head projection, Wang et al., ECCV 2024: 3 heads by default).

    Parameters
    ----------
    in_dim : int
        Width of the representation.
    n_heads : int
        ``C`` (3).
    hidden_dim, out_dim : int
        Widths of each SimCLR-style head.

    Examples
    --------
    >>> heads = MultiProjectionHeads(64, n_heads=3, hidden_dim=64, out_dim=16)
    >>> z = heads(torch.randn(8, 64))     # (3, 8, 16)
    """

    def __init__(self, in_dim: int, n_heads: int = 3, hidden_dim: int = 512,
                 out_dim: int = 128) -> None:
        super().__init__()
        if n_heads < 1:
            raise ValueError(f"MultiProjectionHeads: n_heads must be >= 1, got {n_heads}")
        self.heads = nn.ModuleList(SimCLRHead(in_dim, hidden_dim, out_dim)
                                   for _ in range(n_heads))

    def forward(self, h: Tensor) -> Tensor:
        """``h``: (N, in_dim) -> (C, N, out_dim)."""
        import torch

        return torch.stack([head(h) for head in self.heads])


class PairwiseTemperature(nn.Module):
    """Per-pair temperature ``tau_ij = lower + (upper - lower) sigmoid(MLP([z_i, z_j]))``
    (AMCL's adaptive temperature, Wang et al., ECCV 2024).

    The first layer of the MLP on the concatenation is split as ``W_a z_i + W_b z_j + b`` so the
    ``(Na, Ns, 2D)`` concatenation is never built; memory ``O(Na Ns hidden)``.

    Parameters
    ----------
    dim : int
        Embedding width ``D``.
    hidden : int
        Hidden width of the MLP (16: our choice; the paper says "a small MLP").
    lower, upper : float
        Range of the temperature (our defaults 0.1 and 1.0, spanning SimCLR's usual values).
    """

    def __init__(self, dim: int, hidden: int = 16, lower: float = 0.1,
                 upper: float = 1.0) -> None:
        super().__init__()
        if not 0 < lower < upper:
            raise ValueError(f"PairwiseTemperature: need 0 < lower < upper, got {lower}, {upper}")
        self.a = nn.Linear(dim, hidden)
        self.b = nn.Linear(dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)
        self.lower, self.upper = float(lower), float(upper)

    def forward(self, za: Tensor, zb: Tensor) -> Tensor:
        """``za``: (Na, D), ``zb``: (Ns, D) -> temperatures (Na, Ns) in (lower, upper)."""
        hid = (self.a(za)[:, None, :] + self.b(zb)[None, :, :]).relu()
        return self.lower + (self.upper - self.lower) * self.out(hid).squeeze(-1).sigmoid()

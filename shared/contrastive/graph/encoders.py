"""The encoder and projection head of GRACE (Zhu et al. 2020, sec. 3.3), shared by gCooL
(Li et al. 2022) and POT (Yu et al. 2023): a 2-layer GCN (Kipf & Welling 2017, eq. 2) with an
activation after each layer, and a 2-layer MLP with ELU.

The GCN layers are PyG's :class:`~torch_geometric.nn.GCNConv` (symmetric normalisation
``D~^-1/2 (A + I) D~^-1/2``), so :mod:`medcl.contrastive.graph.pot` can bound the same layers
(``conv.lin.weight``, ``conv.bias``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ACTIVATIONS = ("relu", "prelu")


class GCN(nn.Module):
    """Two GCN layers, each followed by the activation: ``H = act(A^ act(A^ X W1) W2)``.

    Parameters
    ----------
    in_dim : int
        Node feature width ``F``.
    hidden_dim : int
        Width of the first layer (GRACE: ``2 x out_dim``).
    out_dim : int
        Embedding width.
    activation : {"relu", "prelu"}
        ``relu`` (GRACE on most sets; required by POT's bounds to be monotone) or ``prelu``
        (GRACE on Cora; its slope is kept at or above 0 so that it stays monotone).
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, activation: str = "relu"):
        super().__init__()
        from torch_geometric.nn import GCNConv

        if activation not in ACTIVATIONS:
            raise ValueError(f"GCN: activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.convs = nn.ModuleList([GCNConv(in_dim, hidden_dim), GCNConv(hidden_dim, out_dim)])
        self.activation = activation
        self.prelu = nn.ModuleList([nn.PReLU(hidden_dim), nn.PReLU(out_dim)]) \
            if activation == "prelu" else None
        self.out_dim = out_dim

    def act(self, h: Tensor, layer: int) -> Tensor:
        """The activation of ``layer`` (monotone non-decreasing, as POT's bounds need)."""
        if self.prelu is None:
            return F.relu(h)
        return F.prelu(h, self.prelu[layer].weight.clamp_min(0.0))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """``x``: (N, F), ``edge_index``: (2, E) -> (N, out_dim)."""
        h = x
        for k, conv in enumerate(self.convs):
            h = self.act(conv(h, edge_index), k)
        return h


class ProjectionHead(nn.Module):
    """GRACE's projection ``g(h) = W2 ELU(W1 h)`` (sec. 3.3), output L2-normalised."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, h: Tensor) -> Tensor:
        return F.normalize(self.fc2(F.elu(self.fc1(h))), dim=1)


def gcn_embed(encoder: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """Frozen embeddings ``(N, D)`` of the whole graph (eval mode, no gradient)."""
    was = encoder.training
    encoder.eval()
    with torch.no_grad():
        z = encoder(x, edge_index)
    encoder.train(was)
    return z

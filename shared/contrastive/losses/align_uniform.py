"""Alignment + uniformity loss (Wang & Isola 2020, "Understanding Contrastive Representation
Learning through Alignment and Uniformity on the Hypersphere", ICML, eqs. 4-5)."""

from __future__ import annotations

from torch import Tensor, nn

from .. import distributed
from ..functional import alignment, uniformity
from ._base import normalize


class AlignUniformLoss(nn.Module):
    """``L = align_alpha(z0, z1) + lam * (unif_t(z0) + unif_t(z1)) / 2`` on normalised embeddings.

    Parameters
    ----------
    alpha : float
        Exponent of the alignment distance (paper default 2).
    t : float
        Uniformity kernel scale (paper default 2).
    lam : float
        Weight of the uniformity term (paper default 1).
    gather_distributed : bool
        Uniformity over the embeddings of all processes; alignment stays per pair.

    Examples
    --------
    >>> loss = AlignUniformLoss()(torch.randn(32, 64), torch.randn(32, 64))
    """

    def __init__(self, alpha: float = 2.0, t: float = 2.0, lam: float = 1.0,
                 gather_distributed: bool = False) -> None:
        super().__init__()
        self.alpha, self.t, self.lam = float(alpha), float(t), float(lam)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, out0: Tensor, out1: Tensor) -> Tensor:
        """``out0, out1``: (N, D) projections of the two views of the same N items."""
        z0, z1 = normalize(out0), normalize(out1)
        align = alignment(z0, z1, self.alpha)
        if self.gather_distributed and distributed.is_distributed():
            g0, g1 = distributed.gather(z0), distributed.gather(z1)
        else:
            g0, g1 = z0, z1
        return align + self.lam * 0.5 * (uniformity(g0, self.t) + uniformity(g1, self.t))

"""Decoupled contrastive learning (Yeh et al. 2022, "Decoupled Contrastive Learning", ECCV):
DCL (eq. 6) removes the positive from the denominator; DCLW (eq. 7) weights the positive with a
von Mises-Fisher weighting."""

from __future__ import annotations

import torch
from torch import Tensor

from .. import distributed
from ..functional import info_nce
from ._base import _Contrastive, normalize, views_stacked


def vmf_weights(out0: Tensor, out1: Tensor, sigma: float = 0.5) -> Tensor:
    """DCLW positive weights ``w_i = 2 - N softmax_i(<z_i, z_i'> / sigma)`` (Yeh et al. eq. 7).

    ``out0, out1``: (N, D) normalised embeddings. Returns (N,) weights with mean 1, computed
    without gradient.
    """
    with torch.no_grad():
        sim = (out0 * out1).sum(dim=1) / sigma
        return 2.0 - out0.shape[0] * torch.softmax(sim, dim=0)


class DCLLoss(_Contrastive):
    """Decoupled contrastive loss.

    ``l_i = -s(z_i, z_i')/tau + log sum_{k not in {i, i'}} exp(s(z_i, z_k)/tau)`` over both views,
    averaged over the ``2N`` anchors.

    Parameters
    ----------
    temperature : float
        ``tau`` (0.1 in the paper's ImageNet runs).
    gather_distributed : bool
        Contrast against the embeddings of all processes.
    chunk_size : int, optional
        Anchors per block of the kernel.

    Examples
    --------
    >>> loss = DCLLoss()(torch.randn(32, 64), torch.randn(32, 64))
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False,
                 chunk_size: int | None = None) -> None:
        super().__init__(temperature, gather_distributed, chunk_size)

    def _positive_weights(self, samples: Tensor, n: int) -> Tensor | None:
        return None

    def forward(self, out0: Tensor, out1: Tensor) -> Tensor:
        """``out0, out1``: (N, D) projections of the two views of the same N items."""
        local = normalize(views_stacked(out0, out1))
        n = out0.shape[0]
        samples, masks = self._pair_masks(local, n)
        w = self._positive_weights(samples, n)
        if w is not None:  # weights over the global batch; keep this process's rows
            r = distributed.rank() if samples is not local else 0
            w = w[r * n:(r + 1) * n]
        return info_nce(local, samples, masks,
                        temperature=self.temperature, chunk_size=self.chunk_size,
                        pos_weight=None if w is None else w.repeat(2),
                        positives_in_denominator=False)


class DCLWLoss(DCLLoss):
    """DCL with the positive term weighted by :func:`vmf_weights` (``sigma = 0.5``).

    With ``gather_distributed`` the softmax in the weights runs over the global batch, as in
    one process on the concatenated batch.
    """

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5,
                 gather_distributed: bool = False, chunk_size: int | None = None) -> None:
        super().__init__(temperature, gather_distributed, chunk_size)
        self.sigma = float(sigma)

    def _positive_weights(self, samples: Tensor, n: int) -> Tensor:
        views = samples.reshape(-1, 2, n, samples.shape[1])  # (processes, view, item, D)
        z0 = views[:, 0].reshape(-1, samples.shape[1])
        z1 = views[:, 1].reshape(-1, samples.shape[1])
        return vmf_weights(z0, z1, self.sigma)

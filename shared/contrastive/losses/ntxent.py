"""NT-Xent, the SimCLR loss (Chen et al. 2020, "A Simple Framework for Contrastive Learning of
Visual Representations", ICML, eq. 1)."""

from __future__ import annotations

from torch import Tensor

from ..functional import info_nce
from ._base import _Contrastive, normalize, views_stacked


class NTXentLoss(_Contrastive):
    """Normalised temperature-scaled cross entropy over two views.

    For the ``2N`` embeddings of a batch, anchor ``i``'s positive is the other view of the same
    image and its denominator holds every other embedding:
    ``l_i = -s(z_i, z_i') / tau + log sum_{k != i} exp(s(z_i, z_k) / tau)`` with cosine ``s``;
    the loss is the mean over all ``2N`` anchors.

    Parameters
    ----------
    temperature : float
        ``tau``; SimCLR uses 0.1-0.5 (0.5 in the paper's CIFAR-10 runs).
    gather_distributed : bool
        Contrast against the embeddings of all processes (autograd-aware all-gather).
    chunk_size : int, optional
        Anchors per block of the kernel, to bound memory at large batch sizes.

    Examples
    --------
    >>> loss_fn = NTXentLoss(temperature=0.5)
    >>> z0, z1 = torch.randn(32, 128), torch.randn(32, 128)
    >>> loss = loss_fn(z0, z1)
    """

    def __init__(self, temperature: float = 0.5, gather_distributed: bool = False,
                 chunk_size: int | None = None) -> None:
        super().__init__(temperature, gather_distributed, chunk_size)

    def forward(self, out0: Tensor, out1: Tensor) -> Tensor:
        """``out0, out1``: (N, D) projections of the two views of the same N items."""
        local = normalize(views_stacked(out0, out1))
        samples, masks = self._pair_masks(local, out0.shape[0])
        return info_nce(local, samples, masks, temperature=self.temperature,
                        chunk_size=self.chunk_size)

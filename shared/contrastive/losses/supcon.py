"""Supervised contrastive loss (Khosla et al. 2020, "Supervised Contrastive Learning",
NeurIPS, eq. 2: L^sup_out)."""

from __future__ import annotations

from torch import Tensor

from ..functional import info_nce
from ._base import _Contrastive, normalize


class SupConLoss(_Contrastive):
    """Every other embedding with the anchor's label is a positive.

    ``l_i = -1/|P(i)| sum_{p in P(i)} log( exp(s_ip/tau) / sum_{a != i} exp(s_ia/tau) )``,
    averaged over anchors that have at least one positive.

    Parameters
    ----------
    temperature : float
        ``tau`` (the paper uses 0.1; its code also defaults to 0.07).
    gather_distributed : bool
        Contrast against the embeddings and labels of all processes.
    chunk_size : int, optional
        Anchors per block of the kernel.

    Examples
    --------
    >>> loss_fn = SupConLoss(temperature=0.1)
    >>> z, y = torch.randn(16, 2, 64), torch.randint(0, 3, (16,))
    >>> loss = loss_fn(z, y)          # (N, n_views, D) with one label per item
    """

    def __init__(self, temperature: float = 0.1, gather_distributed: bool = False,
                 chunk_size: int | None = None) -> None:
        super().__init__(temperature, gather_distributed, chunk_size)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        """``features``: (N, D), or (N, V, D) for V views; ``labels``: (N,) integers."""
        if features.ndim == 3:
            n_views = features.shape[1]
            features = features.transpose(0, 1).reshape(-1, features.shape[-1])
            labels = labels.repeat(n_views)
        if features.ndim != 2 or labels.shape != (features.shape[0],):
            raise ValueError(f"SupConLoss: features {tuple(features.shape)} need (N, D) or "
                             f"(N, V, D) and labels (N,), got labels {tuple(labels.shape)}")
        local = normalize(features)
        samples, masks = self._label_masks(local, labels)
        return info_nce(local, samples, masks, temperature=self.temperature,
                        chunk_size=self.chunk_size)

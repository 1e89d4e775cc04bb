"""Multi-view contrastive losses for ``M >= 2`` views: MV-InfoNCE and MV-DHEL (Koromilas et al.
2025, "Towards Scalable Multi-View Contrastive Learning", arXiv:2507.06979)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import multiview_dhel, multiview_info_nce
from ._base import normalize


def _stack(views: Tensor | list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    if isinstance(views, list | tuple):
        if len(views) < 2 or any(v.ndim != 2 or v.shape != views[0].shape for v in views):
            raise ValueError("expected >= 2 views, each (N, D) of one shape")
        views = torch.stack(list(views))
    if views.ndim != 3:
        raise ValueError(f"expected views (M, N, D), got {tuple(views.shape)}")
    return normalize(views.reshape(-1, views.shape[-1])).reshape(views.shape)


class MVInfoNCELoss(nn.Module):
    """MV-InfoNCE: one term per sample and view over all view pairs (see
    :func:`medcl.contrastive.functional.multiview_info_nce`). ``M = 2`` gives NT-Xent ``- log 2``.

    Parameters
    ----------
    temperature : float
        ``tau`` (0.5).
    chunk_size : int, optional
        Anchors per block of the denominator (memory ``O(chunk x M N)``).

    Examples
    --------
    >>> loss = MVInfoNCELoss()(torch.randn(4, 32, 128))   # 4 views of 32 items
    """

    def __init__(self, temperature: float = 0.5, chunk_size: int | None = None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature, self.chunk_size = float(temperature), chunk_size

    def forward(self, views: Tensor | list[Tensor]) -> Tensor:
        """``views``: (M, N, D) tensor or a list of M (N, D) projections; normalised here."""
        return multiview_info_nce(_stack(views), self.temperature, self.chunk_size)


class MVDHELLoss(MVInfoNCELoss):
    """MV-DHEL: alignment over all view pairs, uniformity decoupled per view (see
    :func:`medcl.contrastive.functional.multiview_dhel`).

    Examples
    --------
    >>> loss = MVDHELLoss()([torch.randn(32, 128) for _ in range(3)])
    """

    def forward(self, views: Tensor | list[Tensor]) -> Tensor:
        """``views``: (M, N, D) tensor or a list of M (N, D) projections; normalised here."""
        return multiview_dhel(_stack(views), self.temperature, self.chunk_size)

"""CACR: contrastive attraction and contrastive repulsion (Zheng, Chen, Yao, Yang, Li, Zhang,
Zhou 2021, "Contrastive Attraction and Contrastive Repulsion for Representation Learning",
arXiv:2105.03746, TMLR 2023; authors' code JegZheng/CACR-SSL)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import cacr_attraction, cacr_repulsion
from ._base import normalize


class CACRLoss(nn.Module):
    """``L = CA + CR`` over ``M`` views (one query + ``M - 1`` positives) of ``N`` items.

    - attraction: :func:`~medcl.contrastive.functional.cacr_attraction`, positives weighted by
      ``exp(+tau_pos d^2)`` (far positives pulled harder);
    - repulsion: :func:`~medcl.contrastive.functional.cacr_repulsion`, negatives weighted by
      ``exp(-tau_neg d^2)`` (close negatives pushed harder).

    Embeddings are L2-normalised (the authors' encoders end with a normalisation). Authors'
    defaults: 4 positives per sample (``M = 5`` views), ``tau_pos = 1``, ``tau_neg = 1``,
    ``alpha = beta = 1``, batch 128. Departure: the repulsion uses ``||a||^2 + ||b||^2 - 2ab``
    (no ``(N, N, D)`` difference tensor); values equal the authors' up to rounding.

    Parameters
    ----------
    tau_pos, tau_neg : float
        Temperatures of the conditional positive / negative distributions.
    alpha, beta : float
        Scales of the attraction / repulsion costs.

    Examples
    --------
    >>> loss = CACRLoss()(torch.randn(5, 32, 128))   # query + 4 positives of 32 items
    """

    n_positives_default = 4

    def __init__(self, tau_pos: float = 1.0, tau_neg: float = 1.0, alpha: float = 1.0,
                 beta: float = 1.0) -> None:
        super().__init__()
        self.tau_pos, self.tau_neg = float(tau_pos), float(tau_neg)
        self.alpha, self.beta = float(alpha), float(beta)

    def forward(self, views: Tensor | list[Tensor], return_terms: bool = False
                ) -> Tensor | dict[str, Tensor]:
        """``views``: (M, N, D) or a list of M (N, D) projections, ``M >= 2``. Returns the
        scalar loss, or ``{"loss", "attraction", "repulsion"}`` with ``return_terms``."""
        if isinstance(views, list | tuple):
            views = torch.stack(list(views))
        if views.ndim != 3:
            raise ValueError(f"CACRLoss: views must be (M, N, D), got {tuple(views.shape)}")
        z = normalize(views.reshape(-1, views.shape[-1])).reshape(views.shape)
        ca = cacr_attraction(z, self.tau_pos, self.alpha)
        cr = cacr_repulsion(z, self.tau_neg, self.beta)
        if return_terms:
            return {"loss": ca + cr, "attraction": ca, "repulsion": cr}
        return ca + cr

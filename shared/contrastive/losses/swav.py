"""SwAV's swapped-prediction loss (Caron et al. 2020, "Unsupervised Learning of Visual Features
by Contrasting Cluster Assignments", NeurIPS, eq. 1-3). Prototypes, their normalisation and
freezing, and the feature queue live in :mod:`medcl.contrastive.prototypes`."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import swav_loss


class SwAVLoss(nn.Module):
    """Swapped prediction over multi-crop with Sinkhorn-Knopp codes.

    Same call convention and value as lightly's ``SwaVLoss``: ``loss(high, low, queue=None)``
    with lists of prototype scores. Each crop's log-softmax is computed once (lightly recomputes
    it per code), which is where the speed-up comes from.

    Parameters
    ----------
    temperature : float
        ``tau`` of the prediction softmax (0.1).
    sinkhorn_iterations : int
        3.
    sinkhorn_epsilon : float
        0.05.
    sinkhorn_gather_distributed : bool
        All-reduce the Sinkhorn sums over processes (the global batch is equipartitioned).

    Examples
    --------
    >>> from medcl.contrastive.prototypes import Prototypes
    >>> protos = Prototypes(128, 300)
    >>> high = [protos(torch.randn(16, 128)) for _ in range(2)]   # 2 large crops
    >>> low = [protos(torch.randn(16, 128)) for _ in range(4)]    # 4 small crops
    >>> loss = SwAVLoss()(high, low)
    """

    def __init__(self, temperature: float = 0.1, sinkhorn_iterations: int = 3,
                 sinkhorn_epsilon: float = 0.05, sinkhorn_gather_distributed: bool = False
                 ) -> None:
        super().__init__()
        if temperature <= 0 or sinkhorn_epsilon <= 0 or sinkhorn_iterations < 1:
            raise ValueError("SwAVLoss: temperature and epsilon must be > 0, iterations >= 1")
        if sinkhorn_gather_distributed and not torch.distributed.is_available():
            raise ValueError("sinkhorn_gather_distributed=True needs torch.distributed")
        self.temperature = float(temperature)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.sinkhorn_epsilon = float(sinkhorn_epsilon)
        self.sinkhorn_gather_distributed = bool(sinkhorn_gather_distributed)

    def forward(self, high_resolution_outputs: list[Tensor],
                low_resolution_outputs: list[Tensor] | None = None,
                queue_outputs: list[Tensor] | None = None) -> Tensor:
        """``high_resolution_outputs``: list of (B, K) scores of the large crops;
        ``low_resolution_outputs``: list of (B, K) scores of the small crops;
        ``queue_outputs``: list of (Q, K) scores of queued features, one per large crop."""
        return swav_loss(list(high_resolution_outputs), list(low_resolution_outputs or []),
                         queue_outputs, self.temperature, self.sinkhorn_iterations,
                         self.sinkhorn_epsilon, self.sinkhorn_gather_distributed)

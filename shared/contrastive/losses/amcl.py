"""AMCL: adaptive multi-head contrastive learning (Wang, Koniusz, Gedeon, Zheng, "Adaptive
Multi-head Contrastive Learning", ECCV 2024, arXiv:2310.05615, sec. 4).

The released code is schematic (it does not run), so this module follows the paper's text;
what we chose where the text leaves room is listed in :class:`AMCLLoss`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import info_nce_logits, temperature_regulariser
from ..heads import PairwiseTemperature
from ._base import normalize

BASES = ("ntxent", "dcl", "supcon")


class AMCLLoss(nn.Module):
    """Multi-head contrast with pairwise adaptive temperatures, over NT-Xent, DCL or SupCon.

    For each of the ``C`` heads (projections from
    :class:`~medcl.contrastive.heads.MultiProjectionHeads`), with normalised ``z`` and
    ``tau_ij = lower + (upper - lower) sigmoid(MLP_c([z_i, z_j]))``
    (:class:`~medcl.contrastive.heads.PairwiseTemperature`), the base loss is computed on the
    logits ``<z_i, z_j> / tau_ij`` and the regulariser
    :func:`~medcl.contrastive.functional.temperature_regulariser`
    ``beta [(d/2) log tau + 1/tau]`` is added over the pairs that enter the loss. The loss is
    the mean over heads.

    Our choices where the paper leaves room: the temperature MLP reads *detached* embeddings
    (so the temperature path does not shape the representation; gradient still reaches
    ``tau`` through the loss and the regulariser), hidden width 16, range ``[0.1, 1.0]``, the
    mean rather than the sum over heads (so the scale matches one head), and one temperature
    MLP per head. The MLP's parameters belong to this module: give ``loss.parameters()`` to
    the optimiser too.

    Parameters
    ----------
    dim : int
        Width ``d`` of each head's projection.
    n_heads : int
        ``C`` (3).
    base : {"ntxent", "dcl", "supcon"}
        Which loss the heads share.
    lower, upper : float
        Temperature range.
    beta : float
        Regulariser weight (0.1).
    hidden : int
        Hidden width of each temperature MLP.

    Examples
    --------
    >>> loss_fn = AMCLLoss(dim=16, n_heads=3)
    >>> out = loss_fn(torch.randn(3, 8, 16), torch.randn(3, 8, 16))
    >>> out["loss"].backward()     # out also holds "per_head" (C,) and "tau_mean"
    """

    def __init__(self, dim: int, n_heads: int = 3, base: str = "ntxent", lower: float = 0.1,
                 upper: float = 1.0, beta: float = 0.1, hidden: int = 16) -> None:
        super().__init__()
        if base not in BASES:
            raise ValueError(f"AMCLLoss: base must be one of {BASES}, not {base!r}")
        if n_heads < 1:
            raise ValueError(f"AMCLLoss: n_heads must be >= 1, got {n_heads}")
        self.dim, self.n_heads, self.base, self.beta = int(dim), int(n_heads), base, float(beta)
        self.temperatures = nn.ModuleList(PairwiseTemperature(dim, hidden, lower, upper)
                                          for _ in range(n_heads))

    def forward(self, z0: Tensor, z1: Tensor, labels: Tensor | None = None) -> dict[str, Tensor]:
        """``z0, z1``: (C, N, D) per-head projections of two views (or (N, D) with one head);
        ``labels``: (N,) integers, required for ``base="supcon"``. Returns ``loss``,
        ``per_head`` (C,) and ``tau_mean`` (detached)."""
        if z0.ndim == 2:
            z0, z1 = z0[None], z1[None]
        if z0.ndim != 3 or z0.shape != z1.shape or z0.shape[0] != self.n_heads or \
                z0.shape[2] != self.dim:
            raise ValueError(f"AMCLLoss: z0, z1 must be ({self.n_heads}, N, {self.dim}), got "
                             f"{tuple(z0.shape)} and {tuple(z1.shape)}")
        n = z0.shape[1]
        if self.base == "supcon":
            if labels is None or labels.shape != (n,):
                raise ValueError("AMCLLoss(base='supcon') needs labels of shape (N,)")
            ids = labels.repeat(2)
        else:
            ids = torch.arange(n, device=z0.device).repeat(2)
        eye = torch.eye(2 * n, dtype=torch.bool, device=z0.device)
        pos = (ids[:, None] == ids[None, :]) & ~eye
        neg = ~pos & ~eye
        in_den = self.base != "dcl"
        used = ~eye  # every off-diagonal pair enters the loss (numerator or denominator)
        per_head, taus = [], []
        for c in range(self.n_heads):
            z = normalize(torch.cat([z0[c], z1[c]]))
            tau = self.temperatures[c](z.detach(), z.detach())
            loss = info_nce_logits((z @ z.T) / tau, pos, neg, positives_in_denominator=in_den)
            reg = temperature_regulariser(tau[used], self.dim, self.beta)
            per_head.append(loss + reg)
            taus.append(tau[used].detach().mean())
        stacked = torch.stack(per_head)
        return {"loss": stacked.mean(), "per_head": stacked.detach(),
                "tau_mean": torch.stack(taus).mean()}

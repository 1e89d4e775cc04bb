"""SepCLR: contrastive analysis of a background and a target set (Louiset et al. 2024,
"Separating common from salient patterns with Contrastive Representation Learning", ICLR,
arXiv:2402.11928, sec. 3, eq. 6-9)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import alignment, kernel_joint_entropy_loss, uniformity
from ._base import normalize


class SepCLRLoss(nn.Module):
    """The SepCLR objective over two views' common codes ``c`` and salient codes ``s``.

    With Gaussian-kernel alignment ``A(u, v) = mean ||u - v||^2 / (2 tau)`` and uniformity
    ``U(u) = log mean_{i<j} exp(-||u_i - u_j||^2 / (2 tau))`` (Wang & Isola 2020, rescaled):

    - common (both groups, ``c`` on the unit sphere): ``A(c1, c2) + 2 (U(c1) + U(c2)) / 2``;
    - salient (``s`` Euclidean): ``A(s1, s2)`` on target rows ``+ 2 (U(s1') + U(s2')) / 2``, where
      ``s'`` is ``s`` with background rows replaced by the null vector (the background carries no
      salient information, so its salient code is the constant 0);
    - regulariser: ``(A(s1_bg, 0) + A(s2_bg, 0)) / 2`` pulls background salient codes to 0;
    - mutual information: the kernel joint-entropy term
      :func:`~contrastive.functional.kernel_joint_entropy_loss` between ``c`` and ``s'``, per view.

    ``loss = w_c common + w_s salient + w_r regulariser + w_mi mi``; the authors use
    ``(1, 1000, 1000, 10)`` and ``tau = 0.5``. Not distributed: the terms are per-batch means.

    Examples
    --------
    >>> loss_fn = SepCLRLoss()
    >>> c1, c2, s1, s2 = (torch.randn(8, 4) for _ in range(4))
    >>> out = loss_fn(c1, c2, s1, s2, is_target=torch.arange(8) % 2 == 1)
    >>> out["loss"].backward()  # out also holds "common", "salient", "regulariser", "mi"
    """

    def __init__(self, tau: float = 0.5, common_weight: float = 1.0,
                 salient_weight: float = 1000.0, regulariser_weight: float = 1000.0,
                 mi_weight: float = 10.0) -> None:
        super().__init__()
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        self.tau = float(tau)
        self.weights = dict(common=common_weight, salient=salient_weight,
                            regulariser=regulariser_weight, mi=mi_weight)

    def _align(self, u: Tensor, v: Tensor) -> Tensor:
        if u.shape[0] == 0:
            return u.new_zeros(())
        return alignment(u, v, alpha=2.0) / (2 * self.tau)

    def _uniform(self, u: Tensor) -> Tensor:
        return uniformity(u, t=1.0 / (2 * self.tau))

    def forward(self, c1: Tensor, c2: Tensor, s1: Tensor, s2: Tensor,
                is_target: Tensor) -> dict[str, Tensor]:
        """``c1, c2``: (N, Dc) common codes of two views; ``s1, s2``: (N, Ds) salient codes;
        ``is_target``: (N,) bool. Returns the total ``"loss"`` and each term."""
        if c1.shape != c2.shape or s1.shape != s2.shape or c1.shape[0] != s1.shape[0]:
            raise ValueError("SepCLRLoss: c1/c2 and s1/s2 must be pairs of (N, D) codes")
        if is_target.shape != (c1.shape[0],) or is_target.dtype != torch.bool:
            raise ValueError("SepCLRLoss: is_target must be a bool tensor of shape (N,)")
        bg = ~is_target
        c1, c2 = normalize(c1), normalize(c2)
        keep = is_target[:, None].to(s1.dtype)
        s1n, s2n = s1 * keep, s2 * keep  # s' : background rows become the null vector
        terms = {
            "common": self._align(c1, c2) + (self._uniform(c1) + self._uniform(c2)),
            "salient": self._align(s1[is_target], s2[is_target])
            + (self._uniform(s1n) + self._uniform(s2n)),
            "regulariser": 0.5 * (self._align(s1[bg], torch.zeros_like(s1[bg]))
                                  + self._align(s2[bg], torch.zeros_like(s2[bg]))),
            "mi": 0.5 * (kernel_joint_entropy_loss(c1, s1n, self.tau)
                         + kernel_joint_entropy_loss(c2, s2n, self.tau)),
        }
        total = sum(self.weights[k] * v for k, v in terms.items())
        return {"loss": total, **terms}

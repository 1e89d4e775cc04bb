"""Momentum (EMA) encoder and FIFO feature queue, MoCo-style (He et al. 2020, "Momentum Contrast
for Unsupervised Visual Representation Learning", CVPR, sec. 3.2, eq. 2 and Algorithm 1).

Used by Feature Transformation (:mod:`medcl.contrastive.losses.ft`) for its negatives and by SwAV
(:mod:`medcl.contrastive.prototypes`) for its optional queue.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class MomentumEncoder(nn.Module):
    """A frozen copy of ``online`` updated as ``theta_k <- m theta_k + (1 - m) theta_q``.

    Parameters
    ----------
    online : nn.Module
        The encoder trained by gradient (not modified).
    momentum : float
        ``m`` in [0, 1] (0.999 in MoCo).

    Examples
    --------
    >>> enc = nn.Linear(8, 4)
    >>> key_enc = MomentumEncoder(enc, momentum=0.99)
    >>> key_enc.update(enc)            # after each optimiser step
    >>> k = key_enc(torch.randn(2, 8))  # no gradient
    """

    def __init__(self, online: nn.Module, momentum: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.encoder = copy.deepcopy(online)
        for p in self.encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, online: nn.Module, momentum: float | None = None) -> None:
        """EMA of the parameters (MoCo eq. 2); buffers (batch-norm statistics) are copied."""
        m = self.momentum if momentum is None else float(momentum)
        for pk, pq in zip(self.encoder.parameters(), online.parameters(), strict=True):
            pk.mul_(m).add_(pq.detach(), alpha=1.0 - m)
        for bk, bq in zip(self.encoder.buffers(), online.buffers(), strict=True):
            bk.copy_(bq)

    @torch.no_grad()
    def forward(self, *args, **kwargs):
        return self.encoder(*args, **kwargs)


class FeatureQueue(nn.Module):
    """First-in first-out queue of ``size`` feature vectors (MoCo's dictionary).

    The queue starts empty; :meth:`push` writes a batch over the oldest entries (a ring buffer
    with a pointer) and :attr:`features` returns the filled entries, oldest first. The queue
    is a buffer, so it is saved in ``state_dict`` and moves with ``.to(device)``.

    Parameters
    ----------
    size : int
        Capacity ``K`` (65536 in MoCo; keep it a multiple of the batch size).
    dim : int
        Feature width.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"FeatureQueue: size and dim must be >= 1, got {size}, {dim}")
        self.size, self.dim = int(size), int(dim)
        self.register_buffer("queue", torch.zeros(size, dim))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))

    def __len__(self) -> int:
        return int(self.count)

    @torch.no_grad()
    def push(self, x: Tensor) -> None:
        """Enqueue ``x: (B, dim)`` (detached), dropping the oldest entries when full."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"FeatureQueue.push: expected (B, {self.dim}), got {tuple(x.shape)}")
        x = x.detach().to(self.queue.dtype)[-self.size:]
        b, p = x.shape[0], int(self.ptr)
        idx = (torch.arange(b, device=self.queue.device) + p) % self.size
        self.queue[idx] = x
        self.ptr.fill_((p + b) % self.size)
        self.count.fill_(min(self.size, int(self.count) + b))

    @property
    def features(self) -> Tensor:
        """The ``len(self)`` stored features, oldest first: (len, dim)."""
        n, p = int(self.count), int(self.ptr)
        if n < self.size:
            return self.queue[:n]
        return torch.cat([self.queue[p:], self.queue[:p]])

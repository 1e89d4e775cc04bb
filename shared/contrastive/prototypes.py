"""SwAV prototypes, their per-step normalisation and first-epoch freezing, Sinkhorn-Knopp, and
the optional feature queues (Caron et al. 2020, "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS, sec. 3 and appendix A; authors' code
facebookresearch/swav ``main_swav.py``).

Training-loop protocol (what :mod:`medcl.contrastive.engine` or an app calls, in order)::

    protos.normalize_()                      # before the forward pass, every step
    scores = [protos(z) for z in crops]      # z: projections of each crop
    loss = SwAVLoss()(scores[:2], scores[2:], queues.scores(protos, epoch))
    loss.backward()
    protos.cancel_gradients(epoch)           # prototypes frozen during the first epoch(s)
    optimizer.step()
    queues.push(projections of the 2 large crops)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .functional import sinkhorn_knopp
from .momentum import FeatureQueue

__all__ = ["Prototypes", "SwAVQueues", "sinkhorn_knopp"]


class Prototypes(nn.Module):
    """``K`` trainable prototype vectors ``C`` (a bias-free linear layer); scores ``z C``.

    Parameters
    ----------
    dim : int
        Width of the projections (128 in SwAV).
    n_prototypes : int
        ``K`` (3000 for ImageNet; about 10 x the number of classes on small sets).
    frozen_epochs : int
        Epochs during which :meth:`cancel_gradients` drops the prototypes' gradients (1 in the
        paper, "freeze_prototypes_niters" = one epoch of iterations).
    normalize_input : bool
        L2-normalise ``z`` in :meth:`forward` (SwAV normalises the projections).

    Examples
    --------
    >>> protos = Prototypes(128, 300)
    >>> protos.normalize_()
    >>> scores = protos(torch.randn(8, 128))      # (8, 300), cosines in [-1, 1]
    """

    def __init__(self, dim: int, n_prototypes: int = 3000, frozen_epochs: int = 1,
                 normalize_input: bool = True) -> None:
        super().__init__()
        if dim < 1 or n_prototypes < 1 or frozen_epochs < 0:
            raise ValueError("Prototypes: dim, n_prototypes >= 1 and frozen_epochs >= 0")
        self.layer = nn.Linear(dim, n_prototypes, bias=False)
        self.frozen_epochs = int(frozen_epochs)
        self.normalize_input = bool(normalize_input)
        self.normalize_()

    @property
    def weight(self) -> Tensor:
        return self.layer.weight

    @torch.no_grad()
    def normalize_(self) -> None:
        """Project every prototype back onto the unit sphere (SwAV, every iteration)."""
        self.layer.weight.copy_(F.normalize(self.layer.weight, dim=1))

    def frozen(self, epoch: int) -> bool:
        """Whether the prototypes are frozen at ``epoch`` (0-based)."""
        return epoch < self.frozen_epochs

    def cancel_gradients(self, epoch: int) -> bool:
        """Drop the prototypes' gradients while frozen; call between backward and step.
        Returns whether they were dropped."""
        if self.frozen(epoch):
            self.layer.weight.grad = None
            return True
        return False

    def forward(self, z: Tensor) -> Tensor:
        """``z``: (B, dim) -> scores (B, K)."""
        if z.ndim != 2 or z.shape[1] != self.layer.in_features:
            raise ValueError(f"Prototypes expect (B, {self.layer.in_features}), "
                             f"got {tuple(z.shape)}")
        return self.layer(F.normalize(z, dim=1) if self.normalize_input else z)


class SwAVQueues(nn.Module):
    """One FIFO queue of past projections per high-resolution crop, used from ``start_epoch``
    (SwAV sec. 4 / appendix: a queue of 3840 features from epoch 15 when batches are small).

    Parameters
    ----------
    n_crops : int
        High-resolution crops (2).
    size : int
        Features per queue.
    dim : int
        Projection width.
    start_epoch : int
        First epoch (0-based) whose loss uses the queues; they are filled from the start.
    """

    def __init__(self, n_crops: int, size: int, dim: int, start_epoch: int = 15) -> None:
        super().__init__()
        self.queues = nn.ModuleList(FeatureQueue(size, dim) for _ in range(n_crops))
        self.start_epoch = int(start_epoch)

    def scores(self, prototypes: Prototypes, epoch: int) -> list[Tensor] | None:
        """Prototype scores of the queued features, or ``None`` before ``start_epoch`` or
        while a queue is empty."""
        if epoch < self.start_epoch or any(len(q) == 0 for q in self.queues):
            return None
        with torch.no_grad():
            return [prototypes(q.features) for q in self.queues]

    def push(self, projections: list[Tensor]) -> None:
        """Enqueue the (B, dim) projections of each high-resolution crop."""
        if len(projections) != len(self.queues):
            raise ValueError(f"SwAVQueues.push: {len(self.queues)} crops expected, "
                             f"got {len(projections)}")
        for q, z in zip(self.queues, projections, strict=True):
            q.push(z)

"""HiCLR: MoCo with a queue and hierarchically consistent branches of growing augmentation.

Zhang, Lin, Liu, "Hierarchical Consistent Contrastive Learning for Skeleton-Based Action
Recognition with Growing Augmentations", AAAI 2023 (authors' code JHang2020/HiCLR,
``net/hiclr.py`` and ``processor/pretrain_hiclr.py``). Per step, from one batch of sequences:

- branch 0: a basic view (crop + shear) through the online encoder -> query ``q_0``;
  another basic view through the momentum encoder -> key ``k`` (MoCo);
- branch 1: a *normal* view (basic + flip, rotation, noise, blur, axis mask) -> ``q_1``;
- branch 2: a fresh normal view with 10 % of the joints of every frame replaced by a
  learnable mask token -> ``q_2``;
- loss ``L_nce(q_0) + (L_{0->1} + L_{1->2}) / 2`` (:mod:`.functional`), then ``k`` is enqueued.

``branches=1`` is the plain MoCo baseline (SkeletonCLR: branch 0 only, same encoder, queue and
budget). Defaults are the authors' NTU-60 config: queue 32768, momentum 0.999, temperature
0.07, 128-d projection by a 2-layer MLP. Departure: the queue is
:class:`~medcl.contrastive.momentum.FeatureQueue` (filled with random unit vectors at start as
the authors' is) and the key encoder's batch norm uses the key batch's own statistics (no
shuffle-BN, which needs several GPUs).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...functional import info_nce_logits
from ...momentum import FeatureQueue, MomentumEncoder
from .augment import GrowingAugment, joint_mask
from .functional import distribution_matching, moco_logits

__all__ = ["HiCLR"]


class HiCLR(nn.Module):
    """Encoder + projection + momentum key encoder + queue; ``forward(batch)`` is one
    training step returning ``{"loss", "nce", "dm_0_1", "dm_1_2"}``.

    Parameters
    ----------
    encoder : nn.Module
        ``(N, C, T, V, M) -> (N, F)`` with attribute ``out_dim`` (e.g. :class:`~.stgcn.STGCN`).
    augment : GrowingAugment
    proj_dim : int
        Projection width (128).
    queue_size : int
        MoCo queue length (32768 in the paper; keep it below the number of training
        sequences on small data).
    momentum, temperature : float
        0.999 and 0.07.
    branches : {1, 2, 3}
        1: plain MoCo; 3: HiCLR (2: without the joint-mask branch).
    weights : sequence of float
        Weights of ``L_{0->1}, L_{1->2}`` (0.5, 0.5).
    mlp : bool
        2-layer MLP projection (else one linear layer).
    """

    def __init__(self, encoder: nn.Module, augment: GrowingAugment, proj_dim: int = 128,
                 queue_size: int = 32768, momentum: float = 0.999, temperature: float = 0.07,
                 branches: int = 3, weights: Sequence[float] = (0.5, 0.5),
                 mlp: bool = True) -> None:
        super().__init__()
        if branches not in (1, 2, 3):
            raise ValueError(f"HiCLR: branches must be 1, 2 or 3, got {branches}")
        if len(weights) < branches - 1:
            raise ValueError(f"HiCLR: {branches} branches need {branches - 1} weights")
        feat = int(encoder.out_dim)
        self.encoder = encoder
        self.head = (nn.Sequential(nn.Linear(feat, feat), nn.ReLU(), nn.Linear(feat, proj_dim))
                     if mlp else nn.Linear(feat, proj_dim))
        self.key = MomentumEncoder(nn.Sequential(self.encoder, self.head), momentum)
        self.queue = FeatureQueue(queue_size, proj_dim)
        self.queue.push(F.normalize(torch.randn(queue_size, proj_dim), dim=1))
        self.augment = augment
        self.branches, self.temperature = int(branches), float(temperature)
        self.weights = tuple(float(w) for w in weights[: branches - 1])
        if branches == 3:
            self.mask_token = nn.Parameter(torch.zeros(1))

    def project(self, x: Tensor) -> Tensor:
        """L2-normalised projection of the online branch: ``(N, proj_dim)``."""
        return F.normalize(self.head(self.encoder(x)), dim=1)

    def branch_views(self, x: Tensor) -> list[Tensor]:
        """The query views of the branches, weakest first (and the key view is drawn
        separately in :meth:`forward`)."""
        views = [self.augment.apply(x, 0)]
        if self.branches >= 2:
            views.append(self.augment.apply(x, 1))
        if self.branches >= 3:
            views.append(joint_mask(self.augment.apply(x, 1),
                                    self.augment.strengths.joint_mask_ratio,
                                    self.mask_token)[0])
        return views

    def forward(self, batch: Any) -> dict[str, Tensor]:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        views = self.branch_views(x)
        with torch.no_grad():
            self.key.update(nn.Sequential(self.encoder, self.head))
            k = F.normalize(self.key(self.augment.apply(x, 0)), dim=1)
        queue = self.queue.features
        logits = [moco_logits(self.project(v), k, queue, self.temperature) for v in views]
        pos = torch.zeros_like(logits[0], dtype=torch.bool)
        pos[:, 0] = True
        nce = info_nce_logits(logits[0], pos)
        out: dict[str, Tensor] = {"nce": nce.detach()}
        loss = nce
        for b, w in enumerate(self.weights):
            dm = distribution_matching(logits[b + 1], logits[b])
            loss = loss + w * dm
            out[f"dm_{b}_{b + 1}"] = dm.detach()
        self.queue.push(k)
        out["loss"] = loss
        return out

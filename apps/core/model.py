"""Backbones of ``medcl core image`` and the module the engine trains.

:class:`ImageModel` holds the encoder, the method's heads and its loss module (so the loss's
parameters, e.g. prototypes or gates, are optimised and its buffers, e.g. queues, are
checkpointed with the rest); its ``forward`` runs the recipe's step so that the engine calls it
through Fabric's wrapper (DDP synchronisation, AMP).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from medcl.contrastive.backbones import SmallCNN

__all__ = ["ImageModel", "ResNet18", "SmallCNN"]


class ResNet18(nn.Module):
    """torchvision's ResNet-18 (He et al. 2016) with the CIFAR stem of SimCLR (Chen et al.
    2020, appendix B.9: a 3x3 stride-1 first convolution and no max-pool), no classifier:
    ``(N, C, H, W) -> (N, 512)``."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        net.maxpool = nn.Identity()
        net.fc = nn.Identity()
        self.net = net
        self.out_dim = 512

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_backbone(name: str, in_channels: int, width: int = 16) -> nn.Module:
    """``small`` (:class:`SmallCNN`) or ``resnet18`` (:class:`ResNet18`)."""
    if name == "small":
        return SmallCNN(in_channels, width)
    if name == "resnet18":
        return ResNet18(in_channels)
    raise ValueError(f"unknown backbone {name!r}")


StepFn = Callable[["ImageModel", list[Tensor], Tensor | None], Any]


class ImageModel(nn.Module):
    """Encoder + head + loss module of one method; ``forward(batch)`` is one training step.

    Parameters
    ----------
    encoder : nn.Module
        Images ``(N, C, H, W)`` -> features ``(N, F)`` (what the probes and ``embed`` use).
    head : nn.Module
        The method's projection (or heads); may be empty.
    criterion : nn.Module
        The method's loss module (its parameters are optimised, its buffers checkpointed).
    step : callable
        ``step(model, views, labels) -> loss tensor or dict with "loss"``; ``views`` is a list
        of ``(N, C, h, w)`` batches, ``labels`` ``(N,)`` or ``None``.
    augment : nn.Module
        Images ``(N, C, H, W)`` -> the list of views (see :class:`medcl.core.data.BatchAugment`).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, criterion: nn.Module,
                 step: StepFn, augment: nn.Module | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.criterion = criterion
        self.augment = augment
        self._step = step
        # the current epoch (0-based), set by the training loop before each epoch; not saved,
        # so that loading a checkpoint (the engine resumes every epoch) does not turn it back
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long), persistent=False)

    def forward(self, batch: Any) -> Any:
        """``batch``: images ``(N, C, H, W)`` and labels ``(N,)`` (``-1``: unlabelled)."""
        images, labels = batch
        if self.augment is None:
            raise RuntimeError("ImageModel was built without an augmentation")
        labels = None if labels is None or bool((labels < 0).any()) else labels
        return self._step(self, self.augment(images), labels)

    def features(self, views: list[Tensor]) -> list[Tensor]:
        """Encoder features of each view, one encoder pass per group of equal-sized views."""
        out: list[Tensor | None] = [None] * len(views)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[1:]), []).append(i)
        for idx in groups.values():
            h = self.encoder(torch.cat([views[i] for i in idx]))
            for j, part in zip(idx, h.chunk(len(idx)), strict=True):
                out[j] = part
        return out  # type: ignore[return-value]

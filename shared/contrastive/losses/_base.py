"""What the InfoNCE-family modules share: normalisation and the local-vs-gathered layout."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import distributed
from ..functional import LabelMasks, pair_labels


class _Contrastive(nn.Module):
    """Base of the loss modules: temperature, chunking and ``gather_distributed``.

    With ``gather_distributed=True`` each process's local embeddings are the anchors and the
    samples are the embeddings of all processes (autograd-aware all-gather), so negatives come
    from the global batch (SimCLR, Chen et al. 2020, sec. 2: large batches across devices).
    """

    def __init__(self, temperature: float, gather_distributed: bool,
                 chunk_size: int | None) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)
        self.gather_distributed = bool(gather_distributed)
        self.chunk_size = chunk_size
        if gather_distributed and not torch.distributed.is_available():
            raise ValueError("gather_distributed=True needs torch.distributed")

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, gather_distributed={self.gather_distributed}, "
                f"chunk_size={self.chunk_size}")

    def _samples(self, local: Tensor) -> tuple[Tensor, int]:
        """Samples to contrast against and the offset of this process's rows in them."""
        if self.gather_distributed and distributed.is_distributed():
            return distributed.gather(local), distributed.rank() * local.shape[0]
        return local, 0

    def _label_masks(self, local: Tensor, labels: Tensor) -> tuple[Tensor, LabelMasks]:
        """Samples and label masks for anchors ``local`` (rows of this process) with ``labels``;
        each anchor's own row is neither positive nor negative."""
        samples, offset = self._samples(local)
        all_labels = distributed.gather_labels(labels) if samples is not local else labels
        self_index = torch.arange(local.shape[0], device=local.device) + offset
        return samples, LabelMasks(labels, all_labels, self_index)

    def _pair_masks(self, local: Tensor, n: int) -> tuple[Tensor, LabelMasks]:
        """As :meth:`_label_masks` for two stacked views of ``n`` items: positives are the
        other view of the same item (pair ids made unique across processes)."""
        labels = pair_labels(n, device=local.device)
        if self.gather_distributed and distributed.is_distributed():
            labels = labels + distributed.rank() * n
        return self._label_masks(local, labels)


def normalize(z: Tensor) -> Tensor:
    return F.normalize(z, dim=1)


def views_stacked(out0: Tensor, out1: Tensor) -> Tensor:
    if out0.ndim != 2 or out0.shape != out1.shape:
        raise ValueError(f"expected two (N, D) views of one shape, got {tuple(out0.shape)} and "
                         f"{tuple(out1.shape)}")
    return torch.cat([out0, out1], dim=0)

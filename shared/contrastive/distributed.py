"""Rank helpers and an autograd-aware all-gather for losses that contrast across processes."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every process along dim 0, keeping gradients.

    Uses :func:`torch.distributed.nn.functional.all_gather`, whose backward sums the incoming
    gradients across processes and returns each process its own slice, so a loss computed on
    gathered samples gives every process the gradient it would have had in one process on the
    whole batch (up to the data-parallel averaging). All processes must pass the same shape.
    Without a process group it returns ``x`` unchanged.
    """
    if not is_distributed():
        return x
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():  # deprecated in favour of a private API; still the public one
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x), dim=0)


def gather_labels(y: Tensor) -> Tensor:
    """Concatenate a tensor that needs no gradient (labels, ids) from every process."""
    if not is_distributed():
        return y
    out = [torch.empty_like(y) for _ in range(world_size())]
    dist.all_gather(out, y.contiguous())
    return torch.cat(out, dim=0)

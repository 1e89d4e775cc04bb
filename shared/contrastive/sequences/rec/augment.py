"""CL4SRec's random sequence augmentations (Xie et al., "Contrastive Learning for Sequential
Recommendation", ICDE 2022, §3.2), as MCLRec uses them to make its two data-augmented views.

For a sequence ``s = [s_1 .. s_n]``:

- **crop** keeps a random contiguous run of ``max(1, floor(eta * n))`` items (eq. 4);
- **mask** replaces ``floor(gamma * n)`` random items by the mask token (eq. 5);
- **reorder** shuffles a random contiguous run of ``floor(beta * n)`` items (eq. 6).

Defaults are MCLRec's (``MCLRec.yaml``: crop_ratio 0.5, so eta = 1 - 0.5; mask_ratio 0.5;
reorder_ratio 0.8). As in MCLRec's released data loader, the two views of one sequence use two
*different* operations drawn without replacement, and a sequence of one item is left as it is.
Departure: CL4SRec's paper masks with a dedicated ``[mask]`` token, MCLRec's loader writes the
padding id 0 instead (the item then vanishes from attention); we use the mask token, which keeps
the sequence length the encoder sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AugmentRatios", "crop", "mask", "reorder", "two_views", "OPERATIONS"]


@dataclass(frozen=True)
class AugmentRatios:
    """``eta`` (share kept by crop), ``gamma`` (share masked), ``beta`` (share reordered)."""

    eta: float = 0.5
    gamma: float = 0.5
    beta: float = 0.8


def crop(seq: list[int], rng: np.random.Generator, eta: float) -> list[int]:
    """A random contiguous run of ``max(1, floor(eta * n))`` items."""
    keep = max(1, int(np.floor(eta * len(seq))))
    start = int(rng.integers(0, len(seq) - keep + 1))
    return seq[start:start + keep]


def mask(seq: list[int], rng: np.random.Generator, gamma: float, token: int) -> list[int]:
    """``floor(gamma * n)`` random positions set to ``token``."""
    out = list(seq)
    for i in rng.choice(len(seq), size=int(np.floor(gamma * len(seq))), replace=False):
        out[int(i)] = token
    return out


def reorder(seq: list[int], rng: np.random.Generator, beta: float) -> list[int]:
    """A random contiguous run of ``floor(beta * n)`` items shuffled in place."""
    k = int(np.floor(beta * len(seq)))
    start = int(rng.integers(0, len(seq) - k + 1))
    out = list(seq)
    part = out[start:start + k]
    rng.shuffle(part)
    out[start:start + k] = part
    return out


OPERATIONS = ("crop", "mask", "reorder")


def two_views(seqs: list[list[int]], rng: np.random.Generator, mask_token: int,
              ratios: AugmentRatios = AugmentRatios()) -> tuple[list[list[int]], list[list[int]]]:
    """Two augmented views of each sequence, by two different operations (see module doc)."""

    def apply(op: int, s: list[int]) -> list[int]:
        if op == 0:
            return crop(s, rng, ratios.eta)
        if op == 1:
            return mask(s, rng, ratios.gamma, mask_token)
        return reorder(s, rng, ratios.beta)

    first, second = [], []
    for s in seqs:
        if len(s) < 2:
            first.append(list(s))
            second.append(list(s))
            continue
        a, b = rng.choice(3, size=2, replace=False)
        first.append(apply(int(a), s))
        second.append(apply(int(b), s))
    return first, second

"""MCLRec's contrastive objectives (Qin et al., "Meta-optimized Contrastive Learning for
Sequential Recommendation", SIGIR 2023, §3.2-3.3) and the sequence InfoNCE CL4SRec shares.

Notation: ``h1, h2`` (B, H) are the encoder's representations of the two data-augmented views
of a batch of sequences, ``z1 = A1(h1)``, ``z2 = A2(h2)`` the model-augmented views made by the
two learnable augmenters.

- :func:`sequence_info_nce` is eq. 8 (CL4SRec's eq. 8 too): for each of the 2B views, its pair
  is the positive and the other 2(B - 1) views of the batch are the negatives, similarity
  ``<x, y> / tau`` (MCLRec's ``sim='dot'``, tau = 1). Computed by the core kernel
  :func:`medcl.contrastive.functional.info_nce` (pair-id masks, self excluded); the loss is the
  mean over the 2B anchors, i.e. eq. 8 (a sum over both directions) divided by 2B, as the
  authors' cross-entropy does.
- :func:`mclrec_contrast` is ``L_cl,2`` of eq. 9:
  ``L(z1, z2) + L(h1, z2) + L(h2, z1)``.
- :func:`margin_regulariser` is ``R`` of eq. 11-13, :func:`mclrec_regulariser` its sum over the
  three pairs of eq. 9 (as the authors' ``meta_rl`` does).
- :class:`Augmenter` is the learnable model augmenter: an MLP H -> 32 -> 16 -> H with GELU,
  output L2-normalised (the authors' ``Extractor([64, 32, 16, 64])``; the paper says only "MLP").

On ``R``: eq. 12 takes the minimum / maximum of the positive and negative score sets; the
authors' code (``meta_contrast_rl``) takes them per anchor row (each row has one positive and
2(B - 1) negatives), which is what we implement:
``pos_i = min(f+_i, max_j f-_ij)``, ``neg_i = max(f+_i, max_j f-_ij)``,
``R = mean_i [f+_i - pos_i]_+ + mean_ij [neg_i - f-_ij]_+`` (eq. 13 with per-row bounds).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcl.contrastive.functional import LabelMasks, info_nce, pair_labels

__all__ = ["Augmenter", "sequence_info_nce", "margin_regulariser", "mclrec_contrast",
           "mclrec_regulariser", "pair_scores"]


class Augmenter(nn.Module):
    """MCLRec's learnable model augmenter: MLP ``H -> d1 -> d2 -> H`` with GELU, L2-normalised.

    Parameters
    ----------
    hidden : int
        Width of the encoder's representation (and of the output).
    dims : tuple of int
        Widths of the two hidden layers (MCLRec: 32, 16).
    """

    def __init__(self, hidden: int, dims: tuple[int, int] = (32, 16)) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, dims[0]), nn.GELU(),
                                 nn.Linear(dims[0], dims[1]), nn.GELU(),
                                 nn.Linear(dims[1], hidden))

    def forward(self, h: Tensor) -> Tensor:
        """``(B, H) -> (B, H)``, unit rows."""
        return F.normalize(self.net(h), dim=1)


def sequence_info_nce(a: Tensor, b: Tensor, temperature: float = 1.0, *,
                      fast: bool = True) -> Tensor:
    """Eq. 8: symmetric InfoNCE of paired views ``a, b`` (B, H) with 2(B - 1) in-batch negatives.

    ``fast=False`` uses the kernel's plain path, which supports second derivatives (MCLRec's
    meta step differentiates through an encoder update).
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"sequence_info_nce: a and b must be equal (B, H), got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    n = a.shape[0]
    z = torch.cat([a, b])
    labels = pair_labels(n, 2, device=z.device)
    masks = LabelMasks(labels, labels, torch.arange(2 * n, device=z.device))
    return info_nce(z, z, masks, temperature=temperature, fast=fast)


def pair_scores(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 11: each of the 2B views' positive score (2B,) and negative scores (2B, 2B - 2)."""
    n = a.shape[0]
    z = torch.cat([a, b])
    s = z @ z.T
    idx = torch.arange(2 * n, device=z.device)
    partner = (idx + n) % (2 * n)
    pos = s[idx, partner]
    keep = torch.ones_like(s, dtype=torch.bool)
    keep[idx, idx] = False
    keep[idx, partner] = False
    return pos, s[keep].view(2 * n, 2 * n - 2)


def margin_regulariser(a: Tensor, b: Tensor) -> Tensor:
    """Eq. 12-13 with per-anchor bounds (see the module docstring)."""
    pos, neg = pair_scores(a, b)
    hardest = neg.max(dim=1).values
    low = torch.minimum(pos, hardest)
    high = torch.maximum(pos, hardest)
    return (pos - low).clamp_min(0).mean() + (high[:, None] - neg).clamp_min(0).mean()


def mclrec_contrast(h1: Tensor, h2: Tensor, z1: Tensor, z2: Tensor, *,
                    fast: bool = True) -> Tensor:
    """``L_cl,2`` (eq. 9): ``L(z1, z2) + L(h1, z2) + L(h2, z1)``, dot similarity, tau = 1."""
    return (sequence_info_nce(z1, z2, fast=fast) + sequence_info_nce(h1, z2, fast=fast)
            + sequence_info_nce(h2, z1, fast=fast))


def mclrec_regulariser(h1: Tensor, h2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """``R`` summed over the pairs of eq. 9 (the authors' ``meta_rl``, before its weight)."""
    return margin_regulariser(h1, z2) + margin_regulariser(h2, z1) + margin_regulariser(z1, z2)

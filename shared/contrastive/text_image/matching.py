"""Image-text matching: the VSE++ hardest-negative triplet loss and DBL's boost losses.

- VSE++ (Faghri et al. 2018, "VSE++: Improving Visual-Semantic Embeddings with Hard
  Negatives", BMVC; the max-of-hinges loss MH, eq. 5 as we read the arXiv version):
  ``l_MH(i, c) = [a - s(i, c) + s(i, c'_hard)]_+ + [a - s(i, c) + s(i'_hard, c)]_+``,
  margin ``a = 0.2``, summed over the batch as the authors do.
- DBL (Diao et al. 2024, "Deep Boosting Learning: A Brand-New Cooperative Approach for
  Image-Text Matching", IEEE TIP 33): an anchor branch learns with the triplet loss; a target
  branch with the triplet loss plus a *boost* loss whose margins come from the anchor's detached
  scores ``a``, so that the target must beat the anchor. The paper's two forms, as we read them
  and as the authors' ``loss.py`` writes them:

  - relative (``boost_rel_loss``): ``[m + (a_ii - a_ij) - (s_ii - s_ij)]_+``, hardest over
    captions j per image and over images per caption, ``m = 0.2``;
  - absolute (``boost_abs_loss``): ``2 sum_i [m_p + a_ii - s_ii]_+`` plus the hardest
    ``[m_n + s_ij - a_ij]_+`` per row and per column, ``m_p = m_n = 0.1``.

  (Equation numbers of the TIP paper are not given here: we could not check them.)

Departure: ``same`` (B, B) optionally marks pairs that also match (several captions of one
image in a batch); they are not used as negatives. The authors' batches hold one caption per
image, where this mask is the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoders import ImageEncoder, TextEncoder


def _negatives(scores: Tensor, same: Tensor | None) -> Tensor:
    n = scores.shape[0]
    if scores.shape != (n, n):
        raise ValueError(f"scores must be square (images x their captions), got "
                         f"{tuple(scores.shape)}")
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    return ~(eye | same.to(scores.device)) if same is not None else ~eye


def _hardest(cost_rows: Tensor, cost_cols: Tensor, neg: Tensor) -> Tensor:
    """``sum_i max_j cost_rows[i, j] + sum_j max_i cost_cols[i, j]`` over the negatives (the
    hardest caption of each image and the hardest image of each caption), hinges at 0."""
    rows = cost_rows.clamp(min=0).masked_fill(~neg, 0.0).max(dim=1).values
    cols = cost_cols.clamp(min=0).masked_fill(~neg, 0.0).max(dim=0).values
    return rows.sum() + cols.sum()


def triplet_hardest_loss(scores: Tensor, margin: float = 0.2,
                         same: Tensor | None = None) -> Tensor:
    """VSE++ max-of-hinges loss (eq. 5). ``scores`` (B, B): ``s(image i, caption j)``, matches
    on the diagonal; ``same`` (B, B) bool: other matching pairs, never negatives."""
    neg = _negatives(scores, same)
    pos = scores.diagonal()
    return _hardest(margin + scores - pos[:, None], margin + scores - pos[None, :], neg)


def boost_rel_loss(scores: Tensor, anchor: Tensor, margin: float = 0.2,
                   same: Tensor | None = None) -> Tensor:
    """DBL relative boost loss: the target's gap ``s_ii - s_ij`` must exceed the anchor's
    ``a_ii - a_ij`` by ``margin`` (rows: image -> captions; columns: caption -> images, with
    ``s_jj - s_ij``). ``anchor`` is detached here."""
    neg = _negatives(scores, same)
    a = anchor.detach()
    pos, apos = scores.diagonal(), a.diagonal()
    rows = margin + (apos[:, None] - a) - (pos[:, None] - scores)
    cols = margin + (apos[None, :] - a) - (pos[None, :] - scores)
    return _hardest(rows, cols, neg)


def boost_abs_loss(scores: Tensor, anchor: Tensor, margin: float = 0.2, split: float = 0.5,
                   same: Tensor | None = None) -> Tensor:
    """DBL absolute boost loss: positives above the anchor's by ``m_p = split * margin``
    (weighted 2), negatives below the anchor's by ``m_n = (1 - split) * margin`` (hardest per
    row and per column)."""
    neg = _negatives(scores, same)
    a = anchor.detach()
    m_pos, m_neg = margin * split, margin * (1.0 - split)
    cost_pos = (m_pos + a.diagonal() - scores.diagonal()).clamp(min=0).sum()
    cost_neg = m_neg + scores - a
    return 2.0 * cost_pos + _hardest(cost_neg, cost_neg, neg)


class VSEModel(nn.Module):
    """One matching branch: an image encoder over a CNN feature map (regions mean-pooled with
    the global code, then a linear map) and a bidirectional GRU text encoder, both
    L2-normalised; ``scores(images, ids, lengths)`` -> (B_img, B_txt) cosine similarities."""

    def __init__(self, vocab_size: int, dim: int = 64, width: int = 32, channels: int = 3,
                 in_size: int = 64) -> None:
        super().__init__()
        self.image = ImageEncoder(dim, channels, width, in_size)
        self.fc = nn.Linear(2 * dim, dim)
        self.text = TextEncoder(vocab_size, dim, rnn="gru")

    def embed_images(self, images: Tensor) -> Tensor:
        regions, code = self.image(images)
        return F.normalize(self.fc(torch.cat([regions.mean(2), code], dim=1)), dim=1)

    def embed_texts(self, ids: Tensor, lengths: Tensor) -> Tensor:
        return F.normalize(self.text(ids, lengths)[1], dim=1)

    def scores(self, images: Tensor, ids: Tensor, lengths: Tensor) -> Tensor:
        return self.embed_images(images) @ self.embed_texts(ids, lengths).t()

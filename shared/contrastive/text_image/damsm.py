"""DAMSM: the Deep Attentional Multimodal Similarity Model's matching losses.

Xu et al. 2018, "AttnGAN: Fine-Grained Text to Image Generation with Attentional Generative
Adversarial Networks", CVPR, §3.3. With word features ``e`` (D, T) of a description ``D`` and
region features ``v`` (D, R) of an image ``Q``:

- ``s = e^T v`` (T, R) (eq. 7); ``s_bar_ij = exp(s_ij) / sum_k exp(s_kj)``, a softmax over
  the words for each region (eq. 8);
- ``alpha_ij = exp(gamma1 s_bar_ij) / sum_k exp(gamma1 s_bar_ik)`` over the regions and the
  region context of word i ``c_i = sum_j alpha_ij v_j`` (eq. 9);
- ``R(c_i, e_i) = cos(c_i, e_i)`` and
  ``R(Q, D) = log( sum_i exp(gamma2 R(c_i, e_i)) )^(1/gamma2)`` (eq. 10);
- ``P(D_i | Q_i) = softmax_j(gamma3 R(Q_i, D_j))`` (eq. 11),
  ``L1_w = -sum_i log P(D_i | Q_i)``, ``L2_w = -sum_i log P(Q_i | D_i)`` (eqs. 12-13);
- the sentence terms ``L1_s, L2_s`` use ``R(Q, D) = cos(v_bar, e_bar)`` of the global image
  code and the sentence feature (eq. 14 and after).

(Equation numbers as we read the arXiv version.) Departures: the losses are means over the
batch, not sums (only a scale); ``R(Q, D)`` keeps the paper's ``1/gamma2`` power, whereas the
authors' code drops it; and, as the authors' code does (``class_ids`` masks), ``labels``
optionally remove other pairs of the same class from the softmax denominators, since they are
not true negatives. The softmax terms go through the core's kernel
(:func:`medcl.contrastive.functional.info_nce_logits`) with the diagonal as the positive.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..functional import info_nce_logits


def word_region_scores(words: Tensor, lengths: Tensor, regions: Tensor, gamma1: float = 4.0,
                       gamma2: float = 5.0) -> Tensor:
    """``R(Q_j, D_i)`` of every description i and image j (eqs. 7-10).

    Parameters
    ----------
    words : Tensor, shape (Bt, D, T)
        Word features; positions past ``lengths[i]`` are ignored.
    lengths : Tensor, shape (Bt,)
        Number of words of each description (>= 1).
    regions : Tensor, shape (Bi, D, R)
        Region features of each image.

    Returns
    -------
    Tensor, shape (Bt, Bi)
    """
    t = words.shape[2]
    valid = torch.arange(t, device=words.device)[None, :] < lengths.to(words.device)[:, None]
    s = torch.einsum("adt,bdr->abtr", words, regions)                # (Bt, Bi, T, R), eq. 7
    s = s.masked_fill(~valid[:, None, :, None], float("-inf"))
    s_bar = torch.softmax(s, dim=2)                                   # over words, eq. 8
    alpha = torch.softmax(gamma1 * s_bar, dim=3)                      # over regions, eq. 9
    context = torch.einsum("abtr,bdr->abtd", alpha, regions)          # c_i
    cos = F.cosine_similarity(context, words.transpose(1, 2)[:, None], dim=-1, eps=1e-8)
    cos = cos.masked_fill(~valid[:, None, :], float("-inf"))          # (Bt, Bi, T)
    return torch.logsumexp(gamma2 * cos, dim=2) / gamma2              # eq. 10


def _masks(n: int, labels: Tensor | None, device: torch.device) -> tuple[Tensor, Tensor]:
    pos = torch.eye(n, dtype=torch.bool, device=device)
    neg = ~pos
    if labels is not None:
        neg = neg & (labels[:, None] != labels[None, :]).to(device)
    return pos, neg


def _both_ways(scores: Tensor, gamma3: float, labels: Tensor | None) -> Tensor:
    """``L1 + L2`` of eqs. 11-13 for a square score matrix (rows descriptions, cols images)."""
    pos, neg = _masks(scores.shape[0], labels, scores.device)
    logits = gamma3 * scores
    l1 = info_nce_logits(logits.t(), pos, neg)   # P(D_i | Q_i): image i over descriptions
    l2 = info_nce_logits(logits, pos, neg)       # P(Q_i | D_i): description i over images
    return l1 + l2


def damsm_word_loss(words: Tensor, lengths: Tensor, regions: Tensor, labels: Tensor | None = None,
                    gamma1: float = 4.0, gamma2: float = 5.0, gamma3: float = 10.0) -> Tensor:
    """Word-level DAMSM loss ``L1_w + L2_w`` (eqs. 7-13); description i matches image i.

    ``words`` (B, D, T), ``lengths`` (B,), ``regions`` (B, D, R), ``labels`` (B,) optional.
    AttnGAN's CUB defaults: gamma1 = 4, gamma2 = 5, gamma3 = 10.
    """
    if words.shape[0] != regions.shape[0]:
        raise ValueError(f"damsm_word_loss: {words.shape[0]} descriptions for "
                         f"{regions.shape[0]} images")
    return _both_ways(word_region_scores(words, lengths, regions, gamma1, gamma2), gamma3, labels)


def damsm_sentence_loss(code: Tensor, sentence: Tensor, labels: Tensor | None = None,
                        gamma3: float = 10.0) -> Tensor:
    """Sentence-level DAMSM loss ``L1_s + L2_s``: eqs. 11-13 with
    ``R(Q_j, D_i) = cos(v_bar_j, e_bar_i)``. ``code`` (B, D) image codes, ``sentence`` (B, D)."""
    if code.shape != sentence.shape:
        raise ValueError(f"damsm_sentence_loss: codes {tuple(code.shape)} and sentences "
                         f"{tuple(sentence.shape)} differ")
    scores = F.normalize(sentence, dim=1) @ F.normalize(code, dim=1).t()
    return _both_ways(scores, gamma3, labels)

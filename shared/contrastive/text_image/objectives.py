"""The objectives of "A Framework For Image Synthesis Using Supervised Contrastive Learning"
(Liu et al., arXiv 2412.03957): label-guided supervised contrast (Khosla et al. 2020, eq. 2)
added to DAMSM pretraining and to the GAN's generator, over two parameter-sharing branches.

Each image comes with two of its captions; both go through the same (shared) encoders or the
same generator. With the 2B features of both branches and the image labels, positives are every
other feature of the same label (the other branch's copy included):
``L_sc = sum_i -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p/tau) / sum_{a != i} exp(z_i.z_a/tau) )``
(averaged over anchors here), computed by the core's :class:`~medcl.contrastive.losses.SupConLoss`.

- Pretraining: ``L = sum_branches (L_w + L_s) + lambda * L_sc(sentence features)``.
- GAN phase: ``L_G = sum_branches -E[D(G(z_b, e_b), e_b)] + lambda * L_sc(image-encoder codes
  of both fakes and of the real images)``.

The paper has no public code and does not state tau or lambda here (unverified): we use its
predecessor's values (Ye et al. 2021, T2I_CL: tau = 0.5, lambda = 0.2 in the GAN phase) and
lambda = 1 in pretraining. Adding the real images' codes as extra (frozen) samples follows the
issue's reading "SupCon on generated and real image features"; ``with_real=False`` drops them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..losses.supcon import SupConLoss
from .damsm import damsm_sentence_loss, damsm_word_loss


def two_branch_supcon(a: Tensor, b: Tensor, labels: Tensor, temperature: float = 0.5,
                      extra: Tensor | None = None) -> Tensor:
    """SupCon over ``[a; b]`` (two branches, (B, D) each) with ``labels`` (B,) repeated, plus
    optional ``extra`` (B, D) features with the same labels (e.g. real-image codes)."""
    feats = [a, b] if extra is None else [a, b, extra]
    return SupConLoss(temperature)(torch.stack(feats, dim=1), labels)


def pretrain_terms(text_out: list[tuple[Tensor, Tensor, Tensor]], regions: Tensor, code: Tensor,
                   labels: Tensor | None, *, gammas: tuple[float, float, float] = (4.0, 5.0, 10.0),
                   supcon_weight: float = 1.0, temperature: float = 0.5,
                   mask_same_class: bool = True) -> dict[str, Tensor]:
    """DAMSM terms of each branch and the label SupCon term of the sentence features.

    ``text_out``: per branch ``(words (B, D, T), lengths (B,), sentence (B, D))``; ``regions``
    (B, D, R) and ``code`` (B, D) of the images. Returns ``word``, ``sentence``, ``supcon``
    and ``loss`` (their weighted sum); ``supcon`` is 0 without labels or with weight 0.
    """
    g1, g2, g3 = gammas
    mask = labels if mask_same_class else None
    word = sum(damsm_word_loss(w, n, regions, mask, g1, g2, g3) for w, n, _ in text_out)
    sent = sum(damsm_sentence_loss(code, s, mask, g3) for _, _, s in text_out)
    supcon = code.new_zeros(())
    if labels is not None and supcon_weight > 0 and len(text_out) == 2:
        supcon = two_branch_supcon(text_out[0][2], text_out[1][2], labels, temperature)
    return {"word": word, "sentence": sent, "supcon": supcon,
            "loss": word + sent + supcon_weight * supcon}

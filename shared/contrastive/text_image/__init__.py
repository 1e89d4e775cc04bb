"""Text and image together: a word tokenizer, text/image encoders, DAMSM matching losses
(AttnGAN), a light DF-GAN-style text-to-image GAN with the matching-aware gradient penalty,
image-text matching losses (VSE++ hardest-negative triplet, DBL boost losses) and retrieval /
generation metrics.

The modules know no file format: captions arrive as strings, images as tensors.
"""

from __future__ import annotations

from .damsm import damsm_sentence_loss, damsm_word_loss, word_region_scores
from .encoders import ImageEncoder, TextEncoder
from .gan import (
    Discriminator,
    Generator,
    d_hinge_loss,
    g_hinge_loss,
    ma_gradient_penalty,
)
from .matching import VSEModel, boost_abs_loss, boost_rel_loss, triplet_hardest_loss
from .metrics import frechet_distance, r_precision, retrieval_recalls
from .objectives import pretrain_terms, two_branch_supcon
from .vocab import Vocab, tokenize

__all__ = [
    "Discriminator",
    "Generator",
    "ImageEncoder",
    "TextEncoder",
    "VSEModel",
    "Vocab",
    "boost_abs_loss",
    "boost_rel_loss",
    "d_hinge_loss",
    "damsm_sentence_loss",
    "damsm_word_loss",
    "frechet_distance",
    "g_hinge_loss",
    "ma_gradient_penalty",
    "pretrain_terms",
    "r_precision",
    "retrieval_recalls",
    "tokenize",
    "triplet_hardest_loss",
    "two_branch_supcon",
    "word_region_scores",
]

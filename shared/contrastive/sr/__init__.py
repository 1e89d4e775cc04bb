"""Contrastive single-image super-resolution (PCL-SR) and its EDSR backbone.

- :mod:`.edsr` — EDSR-baseline (Lim et al. 2017).
- :mod:`.pcl` — PCL-SR's positives and negatives, the contrastively trained discriminator
  and the InfoNCE on its features (Wu et al., "A Practical Contrastive Learning Framework for
  Single-Image Super-Resolution", IEEE TNNLS 2023, arXiv:2111.13924).
"""

from .edsr import EDSR, edsr_baseline
from .pcl import (
    Discriminator,
    blur,
    contrast_loss,
    discriminator_loss,
    negatives,
    positives,
    sharpen,
    upsample,
)

__all__ = ["EDSR", "Discriminator", "blur", "contrast_loss", "discriminator_loss",
           "edsr_baseline", "negatives", "positives", "sharpen", "upsample"]

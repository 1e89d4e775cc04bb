"""Generalized category discovery under a long-tailed distribution (BaCon) and its baselines.

The maths of ``medcl core gcd``; pure PyTorch / NumPy / SciPy, no files, no apps.

- :mod:`.metrics` — Hungarian-matched All / Old / New accuracy (GCD's "v2" protocol).
- :mod:`.kmeans` — semi-supervised k-means (the GCD baseline's classifier).
- :mod:`.balance` — BaCon's class-distribution estimate, logit adjustment, self-balanced
  sampling weights, and the re-weighted mean-entropy regulariser.
- :mod:`.losses` — soft SupCon through the core kernel's soft positives, SimGCD's
  self-distillation.
"""

from .balance import (
    entropy_regulariser,
    estimate_distribution,
    logit_adjustment,
    sampling_rates,
    self_balanced_mask,
)
from .kmeans import semi_supervised_kmeans
from .losses import self_distillation, soft_supcon, soft_supcon_mask
from .metrics import AccuracySplit, cluster_accuracy, split_accuracy

__all__ = [
    "AccuracySplit",
    "cluster_accuracy",
    "entropy_regulariser",
    "estimate_distribution",
    "logit_adjustment",
    "sampling_rates",
    "self_balanced_mask",
    "self_distillation",
    "semi_supervised_kmeans",
    "soft_supcon",
    "soft_supcon_mask",
    "split_accuracy",
]

"""Loss modules: thin ``nn.Module`` layers over :mod:`medcl.contrastive.functional`.

One module per loss family; each class's ``forward`` documents its shapes.

- :class:`NTXentLoss` (``ntxent``): SimCLR's NT-Xent, ``loss(out0, out1)``.
- :class:`DCLLoss`, :class:`DCLWLoss` (``dcl``): decoupled contrastive loss (+ vMF weights).
- :class:`SupConLoss` (``supcon``): supervised contrastive, ``loss(features, labels)``.
- :class:`AlignUniformLoss` (``align_uniform``): Wang & Isola alignment + uniformity.
- :class:`SepCLRLoss` (``sepclr``): common / salient contrastive analysis.
- :class:`CACRLoss` (``cacr``): contrastive attraction + repulsion over ``M`` views,
  ``loss(views (M, N, D))``; 1 query + 4 positives by default.
- :class:`AMCLLoss` (``amcl``): adaptive multi-head contrast with pairwise temperatures over
  NT-Xent / DCL / SupCon, ``loss(z0 (C, N, D), z1 (C, N, D), labels=None) -> dict``.
- :class:`MVInfoNCELoss`, :class:`MVDHELLoss` (``multiview``): multi-view InfoNCE / DHEL for
  ``M >= 2`` views, ``loss(views (M, N, D))``.
- :class:`SwAVLoss` (``swav``): swapped prediction with Sinkhorn codes, lightly's convention
  ``loss(high [(B, K)], low [(B, K)], queue=None)``; prototypes in
  :mod:`medcl.contrastive.prototypes`.
- :class:`FeatureTransformLoss` (``ft``): InfoNCE with positive extrapolation and negative
  interpolation, ``loss(q, k, queue=None) -> dict`` with score statistics; queue and momentum
  encoder in :mod:`medcl.contrastive.momentum`.
- :class:`HydraLoss` (``hydra``): SimLAP class-pair gated multi-positive InfoNCE + detached
  probe, ``loss(z, labels, h=None) -> dict``; needs labels.
"""

from .align_uniform import AlignUniformLoss
from .amcl import AMCLLoss
from .cacr import CACRLoss
from .dcl import DCLLoss, DCLWLoss, vmf_weights
from .ft import FeatureTransformLoss
from .hydra import HydraLoss
from .multiview import MVDHELLoss, MVInfoNCELoss
from .ntxent import NTXentLoss
from .sepclr import SepCLRLoss
from .supcon import SupConLoss
from .swav import SwAVLoss

__all__ = [
    "AMCLLoss",
    "AlignUniformLoss",
    "CACRLoss",
    "DCLLoss",
    "DCLWLoss",
    "FeatureTransformLoss",
    "HydraLoss",
    "MVDHELLoss",
    "MVInfoNCELoss",
    "NTXentLoss",
    "SepCLRLoss",
    "SupConLoss",
    "SwAVLoss",
    "vmf_weights",
]

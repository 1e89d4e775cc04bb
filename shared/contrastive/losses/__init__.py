"""Loss modules: thin ``nn.Module`` layers over :mod:`medcl.contrastive.functional`."""

from .align_uniform import AlignUniformLoss
from .dcl import DCLLoss, DCLWLoss, vmf_weights
from .ntxent import NTXentLoss
from .sepclr import SepCLRLoss
from .supcon import SupConLoss

__all__ = [
    "AlignUniformLoss",
    "DCLLoss",
    "DCLWLoss",
    "NTXentLoss",
    "SepCLRLoss",
    "SupConLoss",
    "vmf_weights",
]

"""BaCon's soft SupCon and SimGCD's self-distillation.

Soft SupCon (Bai et al. 2023, NeurIPS, sec. 3.3, the "semi-supervised contrastive" term; the
authors' ``SemiConLoss`` / ``compute_softconloss``): SupCon (Khosla et al. 2020, eq. 2,
``L^sup_out``) whose positive mask is the dot product of soft labels,

.. math::

    \\ell_a = -\\frac{\\sum_{p \\ne a} M_{ap} \\log \\frac{e^{z_a \\cdot z_p / \\tau}}
                    {\\sum_{j \\ne a} e^{z_a \\cdot z_j / \\tau}}}{\\sum_{p \\ne a} M_{ap}},
    \\qquad M_{ap} = \\langle s_{i(a)}, s_{i(p)} \\rangle,\\ M = 1 \\text{ for two views of one
    image},

with ``s`` the soft labels (one-hot for labelled images, logit-adjusted predictions for the
sampled unlabelled ones) and every other view in the denominator. It is the core kernel
:func:`medcl.contrastive.functional.info_nce` with the float positive mask ``M`` (soft
positives), the negatives being the views with ``M = 0``, and positives in the denominator.

Departure from the authors' code: they use the classifier's *predictions* as the soft labels of
the labelled images too (the tensor named ``sup_labels_one_hot`` is ``soft_labels[mask_lab]``);
here labelled images use their one-hot ground truth, as the paper's text describes.

Self-distillation (Wen et al. 2023, "Parametric Classification for Generalized Category
Discovery: A Baseline Study" (SimGCD), ICCV, eq. 3): each view's prediction at student
temperature 0.1 is trained on the other view's sharpened prediction (teacher temperature
annealed 0.07 -> 0.04), no gradient through the teacher.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from medcl.contrastive.functional import info_nce

__all__ = ["self_distillation", "soft_supcon", "soft_supcon_mask"]


def soft_supcon_mask(soft: Tensor, n_views: int = 2) -> Tensor:
    """The soft positive mask ``M`` over ``n_views * N`` views stacked view by view.

    Parameters
    ----------
    soft : Tensor, shape (N, K)
        Soft labels (rows summing to 1).

    Returns
    -------
    Tensor, shape (V N, V N)
        ``<s_i, s_j>``, 1 between two views of one image, 0 on the diagonal (self).
    """
    m = soft @ soft.T
    m.fill_diagonal_(1.0)
    big = m.repeat(n_views, n_views)
    big.fill_diagonal_(0.0)
    return big


def soft_supcon(z: Tensor, soft: Tensor, temperature: float = 0.07, n_views: int = 2,
                fast: bool = True) -> Tensor:
    """Soft SupCon (module docstring) through the core kernel.

    Parameters
    ----------
    z : Tensor, shape (V N, D)
        L2-normalised projections, stacked view by view (``torch.cat([z_view0, z_view1])``).
    soft : Tensor, shape (N, K)
        Soft labels; treated as constants (the authors detach the mask).
    temperature : float
        ``tau`` (0.07, the authors' SupCon default).
    n_views : int
    fast : bool
        The kernel's chunked path (``True``) or its plain reference path.
    """
    n = soft.shape[0]
    if z.shape[0] != n_views * n:
        raise ValueError(f"soft_supcon: z has {z.shape[0]} rows, expected {n_views} x {n}")
    pos = soft_supcon_mask(soft.detach().to(z.dtype), n_views)
    eye = torch.eye(len(pos), dtype=torch.bool, device=z.device)
    neg = ~eye & ~(pos > 0)
    return info_nce(z, z, pos, neg, temperature=temperature, fast=fast)


def teacher_temperature(epoch: int, warmup_epochs: int = 30, start: float = 0.07,
                        end: float = 0.04) -> float:
    """SimGCD's teacher temperature: linear from ``start`` to ``end`` over the warm-up."""
    if epoch >= warmup_epochs:
        return end
    return start + (end - start) * epoch / max(warmup_epochs, 1)


def self_distillation(logits: Tensor, teacher_temp: float, student_temp: float = 0.1,
                      n_views: int = 2) -> Tensor:
    """SimGCD's self-distillation: ``mean_{v != u} CE(softmax(z_u / T_t).detach(),
    softmax(z_v / T_s))`` over ordered view pairs.

    Parameters
    ----------
    logits : Tensor, shape (V N, K)
        Classifier logits, stacked view by view.
    """
    student = F.log_softmax(logits / student_temp, dim=1).chunk(n_views)
    teacher = F.softmax(logits.detach() / teacher_temp, dim=1).chunk(n_views)
    total, terms = logits.new_zeros(()), 0
    for u, q in enumerate(teacher):
        for v, logp in enumerate(student):
            if u != v:
                total = total + (-(q * logp).sum(1)).mean()
                terms += 1
    return total / terms

"""MCLRec's meta-optimisation (Qin et al., SIGIR 2023, §3.2.2, Algorithm 1, eq. 14-15).

Two objectives share the encoder ``f_theta`` and the augmenters ``A_phi1, A_phi2``:

- encoder objective (eq. 14): ``L_theta = L_rec + lambda L_cl,1 + beta (L_cl,2 + gamma R)``,
- augmenter objective (eq. 15): ``L_phi = L_cl,2 + gamma R``,

with ``L_rec`` the full-softmax next-item cross-entropy (the authors' ``loss_type: CE``),
``L_cl,1`` the InfoNCE of the two data-augmented views (eq. 7), ``L_cl,2`` eq. 9 and ``R`` the
margin regulariser (eq. 13) over the pairs of eq. 9. One training step is three steps:

1. **Encoder step, functional.** ``theta' = theta - alpha * grad_theta L_theta(theta, phi)``,
   computed as a dict of tensors (``torch.autograd.grad`` with ``create_graph``) and never
   written into the module, so ``theta'`` stays a differentiable function of ``phi``.
2. **Augmenter step through the updated encoder.** The augmented sequences are re-encoded with
   ``theta'`` by :func:`torch.func.functional_call` and ``phi`` is updated by the augmenter
   optimiser with ``d L_phi(theta'(phi), phi) / d phi`` — the partial derivative plus the
   second-order path through ``theta'`` (MAML / DARTS style).
3. **Encoder step, real.** ``theta`` is updated by the encoder optimiser with
   ``grad_theta L_theta(theta, phi_new)``.

Departures, and why
-------------------
- The authors' trainer makes step 1 a real optimiser step (Adam) and then does step 3 as a
  second real step on the same batch; its step 2 therefore sees the updated encoder but no
  gradient flows through the update (first order). We follow the paper's description
  ("use the learned encoder f_theta' to re-encode the augmented sequence ... and then leverage
  back-propagation to update the augmenters") with a differentiable SGD look-ahead of step size
  ``alpha`` (the encoder's learning rate by default) and one real encoder step per batch.
  ``second_order=False`` drops the path through ``theta'`` (a first-order approximation).
- The paper writes ``gamma R`` outside ``beta`` in eq. 14; the authors' code adds
  ``0.1 * R`` inside the ``beta``-weighted term, which we follow (``gamma = 0.1``).
- Because the kernel's fast path is once-differentiable, the contrastive terms of this module use
  the core kernel's plain path (``fast=False``), which has second derivatives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .losses import mclrec_contrast, mclrec_regulariser, sequence_info_nce

__all__ = ["MCLRecWeights", "encoder_objective", "augmenter_objective", "mclrec_step",
           "lookahead"]


@dataclass(frozen=True)
class MCLRecWeights:
    """Loss weights of eq. 14-15: ``lmd`` (L_cl,1), ``beta`` (L_cl,2 + gamma R), ``gamma`` (R),
    ``temperature`` of L_cl,1. Defaults: the authors' Yelp/Beauty scripts (lmd 0.03/0.01,
    beta 0.1) and their fixed ``0.1 * R``; tau = 1 with dot-product similarity."""

    lmd: float = 0.03
    beta: float = 0.1
    gamma: float = 0.1
    temperature: float = 1.0


def augmenter_objective(h1: Tensor, h2: Tensor, z1: Tensor, z2: Tensor,
                        w: MCLRecWeights) -> Tensor:
    """Eq. 15: ``L_cl,2 + gamma R``."""
    return (mclrec_contrast(h1, h2, z1, z2, fast=False)
            + w.gamma * mclrec_regulariser(h1, h2, z1, z2))


def encoder_objective(logits: Tensor, targets: Tensor, h1: Tensor, h2: Tensor, z1: Tensor,
                      z2: Tensor, w: MCLRecWeights) -> Tensor:
    """Eq. 14: ``CE(logits, targets) + lmd L_cl,1(h1, h2) + beta (L_cl,2 + gamma R)``.

    ``logits`` (B, I) over the catalogue, ``targets`` (B,) column indices.
    """
    loss = F.cross_entropy(logits, targets) + w.beta * augmenter_objective(h1, h2, z1, z2, w)
    if w.lmd:
        loss = loss + w.lmd * sequence_info_nce(h1, h2, w.temperature, fast=False)
    return loss


def lookahead(encoder: nn.Module, loss: Tensor, alpha: float,
              second_order: bool = True) -> dict[str, Tensor]:
    """Step 1: ``theta' = theta - alpha * grad_theta loss`` as a name -> tensor dict.

    With ``second_order`` the gradient keeps its graph, so ``theta'`` is differentiable with
    respect to everything ``loss`` depends on (the augmenters); otherwise it is detached.
    """
    named = [(n, p) for n, p in encoder.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [p for _, p in named], create_graph=second_order,
                                allow_unused=True)
    out: dict[str, Tensor] = {}
    for (name, p), g in zip(named, grads, strict=True):
        if g is None:
            out[name] = p
        else:
            out[name] = p - alpha * (g if second_order else g.detach())
    return out


def _set_grads(params: list[nn.Parameter], grads: tuple[Tensor | None, ...]) -> None:
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.detach()


def mclrec_step(encoder: nn.Module, augmenters: nn.Module, encoder_opt: torch.optim.Optimizer,
                augmenter_opt: torch.optim.Optimizer,
                encoder_loss: Callable[[], Tensor],
                augmenter_loss: Callable[[Callable[[Tensor], Tensor]], Tensor],
                alpha: float, second_order: bool = True) -> dict[str, float]:
    """One MCLRec training step: the three steps of the module docstring.

    Parameters
    ----------
    encoder, augmenters : nn.Module
        ``theta`` and ``(phi1, phi2)``; their optimisers hold exactly their parameters.
    encoder_loss : callable
        ``() -> L_theta``, computed with the modules as they are (eq. 14).
    augmenter_loss : callable
        ``(encode) -> L_phi`` (eq. 15), where ``encode(x)`` runs the encoder with the
        look-ahead weights ``theta'`` (:func:`torch.func.functional_call`).
    alpha : float
        Step size of the look-ahead ``theta'``.
    second_order : bool
        Differentiate ``L_phi`` through ``theta'(phi)`` (default) or not.

    Returns
    -------
    dict
        ``loss`` (L_theta of step 3) and ``aug_loss`` (L_phi of step 2).
    """
    from torch.func import functional_call

    enc_params = [p for p in encoder.parameters() if p.requires_grad]
    aug_params = [p for p in augmenters.parameters() if p.requires_grad]
    # step 1: functional encoder update (nothing is written into the module)
    theta_new = lookahead(encoder, encoder_loss(), alpha, second_order)
    buffers = dict(encoder.named_buffers())

    def encode(x: Tensor) -> Tensor:
        return functional_call(encoder, {**theta_new, **buffers}, (x,))

    # step 2: the augmenters, through the updated encoder
    augmenter_opt.zero_grad(set_to_none=True)
    aug_loss = augmenter_loss(encode)
    _set_grads(aug_params, torch.autograd.grad(aug_loss, aug_params, allow_unused=True))
    augmenter_opt.step()
    # step 3: the real encoder update with the new augmenters
    encoder_opt.zero_grad(set_to_none=True)
    loss = encoder_loss()
    _set_grads(enc_params, torch.autograd.grad(loss, enc_params, allow_unused=True))
    encoder_opt.step()
    return {"loss": float(loss.detach()), "aug_loss": float(aug_loss.detach())}

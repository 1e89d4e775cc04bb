"""MCLRec's three-step meta-optimisation against a hand-unrolled update on a tiny model, and
the meta-gradient against finite differences."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from medcl.contrastive.sequences.rec.losses import Augmenter
from medcl.contrastive.sequences.rec.meta import (
    MCLRecWeights,
    augmenter_objective,
    encoder_objective,
    mclrec_step,
)

pytestmark = pytest.mark.usefixtures("one_thread")

W = MCLRecWeights(lmd=0.3, beta=0.7, gamma=0.1, temperature=1.0)
ALPHA, LR_ENC, LR_AUG = 0.5, 0.1, 0.2


def _data():
    g = torch.Generator().manual_seed(0)
    x, x1, x2 = (torch.randn(6, 3, generator=g, dtype=torch.float64) for _ in range(3))
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    return x, x1, x2, y


def _modules():
    torch.manual_seed(0)
    enc = nn.Linear(3, 4).double()
    augs = nn.ModuleList([Augmenter(4, (3, 3)), Augmenter(4, (3, 3))]).double()
    return enc, augs


# ---- hand-written model: the same maths on raw tensors, no nn.Module, no torch.func --------
def _enc(x, w, b):
    return x @ w.T + b


def _aug(h, p):
    w1, b1, w2, b2, w3, b3 = p
    return F.normalize(F.linear(F.gelu(F.linear(F.gelu(F.linear(h, w1, b1)), w2, b2)), w3, b3),
                       dim=1)


def _l0(theta, phi1, phi2, data):
    x, x1, x2, y = data
    h, h1, h2 = (_enc(v, *theta) for v in (x, x1, x2))
    return encoder_objective(h, y, h1, h2, _aug(h1, phi1), _aug(h2, phi2), W)


def _l1(theta, phi1, phi2, data):
    _, x1, x2, _ = data
    h1, h2 = _enc(x1, *theta), _enc(x2, *theta)
    return augmenter_objective(h1, h2, _aug(h1, phi1), _aug(h2, phi2), W)


def _unrolled_phi_grad(theta, phi1, phi2, data, second_order=True):
    g = torch.autograd.grad(_l0(theta, phi1, phi2, data), theta, create_graph=second_order)
    theta_new = [t - ALPHA * (gi if second_order else gi.detach())
                 for t, gi in zip(theta, g, strict=True)]
    return torch.autograd.grad(_l1(theta_new, phi1, phi2, data), [*phi1, *phi2])


def _raw(enc, augs):
    theta = [enc.weight.detach().clone().requires_grad_(), enc.bias.detach().clone()
             .requires_grad_()]
    phis = [[p.detach().clone().requires_grad_() for p in a.parameters()] for a in augs]
    return theta, phis[0], phis[1]


def _run_step(second_order):
    enc, augs = _modules()
    data = _data()
    x, x1, x2, y = data

    def encoder_loss():
        h, h1, h2 = enc(x), enc(x1), enc(x2)
        return encoder_objective(h, y, h1, h2, augs[0](h1), augs[1](h2), W)

    def augmenter_loss(encode):
        h1, h2 = encode(x1), encode(x2)
        return augmenter_objective(h1, h2, augs[0](h1), augs[1](h2), W)

    before = copy.deepcopy((enc, augs))
    mclrec_step(enc, augs, torch.optim.SGD(enc.parameters(), lr=LR_ENC),
                torch.optim.SGD(augs.parameters(), lr=LR_AUG), encoder_loss, augmenter_loss,
                alpha=ALPHA, second_order=second_order)
    return before, (enc, augs), data


@pytest.mark.parametrize("second_order", [True, False])
def test_step_equals_the_hand_unrolled_update(second_order):
    (enc0, augs0), (enc, augs), data = _run_step(second_order)
    theta, phi1, phi2 = _raw(enc0, augs0)
    # step 1 + 2 by hand: phi <- phi - lr * d L1(theta - alpha grad L0(theta, phi), phi) / d phi
    grads = _unrolled_phi_grad(theta, phi1, phi2, data, second_order)
    phi_new = [(p - LR_AUG * g).detach() for p, g in zip([*phi1, *phi2], grads, strict=True)]
    for got, want in zip(augs.parameters(), phi_new, strict=True):
        assert torch.allclose(got, want, atol=1e-10)
    # step 3 by hand: theta <- theta - lr * grad_theta L0(theta, phi_new)
    g = torch.autograd.grad(_l0(theta, phi_new[:6], phi_new[6:], data), theta)
    for got, t, gi in zip(enc.parameters(), theta, g, strict=True):
        assert torch.allclose(got, t - LR_ENC * gi, atol=1e-10)


def test_meta_gradient_matches_finite_differences_and_needs_the_second_order_term():
    enc, augs = _modules()
    data = _data()
    theta, phi1, phi2 = _raw(enc, augs)
    grads = _unrolled_phi_grad(theta, phi1, phi2, data, second_order=True)
    first = _unrolled_phi_grad(theta, phi1, phi2, data, second_order=False)
    g = torch.Generator().manual_seed(3)
    direction = [torch.randn(p.shape, generator=g, dtype=torch.float64)
                 for p in [*phi1, *phi2]]

    def meta_objective(eps):
        ps = [(p + eps * d).detach().requires_grad_()
              for p, d in zip([*phi1, *phi2], direction, strict=True)]
        th = [t.detach().requires_grad_() for t in theta]
        gth = torch.autograd.grad(_l0(th, ps[:6], ps[6:], data), th)
        th_new = [t - ALPHA * gi for t, gi in zip(th, gth, strict=True)]
        return float(_l1(th_new, ps[:6], ps[6:], data).detach())

    eps = 1e-6
    numeric = (meta_objective(eps) - meta_objective(-eps)) / (2 * eps)
    analytic = sum(float((gr * d).sum()) for gr, d in zip(grads, direction, strict=True))
    approx = sum(float((gr * d).sum()) for gr, d in zip(first, direction, strict=True))
    assert analytic == pytest.approx(numeric, rel=1e-5, abs=1e-8)
    assert abs(approx - numeric) > 100 * abs(analytic - numeric)  # the second-order term counts

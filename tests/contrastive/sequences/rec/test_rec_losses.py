"""MCLRec's losses against loop transcriptions of eq. 8, 9 and 11-13."""

import math

import pytest
import torch

from medcl.contrastive.sequences.rec.losses import (
    Augmenter,
    margin_regulariser,
    mclrec_contrast,
    mclrec_regulariser,
    sequence_info_nce,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _loop_eq8(a, b, tau):
    """Eq. 8 as the authors' code computes it: cross-entropy over [positive, 2(B-1) negatives]
    for each of the 2B views, averaged."""
    z = torch.cat([a, b]).double()
    n = a.shape[0]
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        pos = float(z[i] @ z[j]) / tau
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -(pos - math.log(den))
    return total / (2 * n)


def _loop_reg(a, b):
    """Eq. 11-13 with per-anchor bounds, by loops."""
    z = torch.cat([a, b]).double()
    n = a.shape[0]
    pos_terms, neg_terms = [], []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        fp = float(z[i] @ z[j])
        fn = [float(z[i] @ z[k]) for k in range(2 * n) if k not in (i, j)]
        low, high = min(fp, max(fn)), max(fp, max(fn))
        pos_terms.append(max(0.0, fp - low))
        neg_terms += [max(0.0, high - v) for v in fn]
    return sum(pos_terms) / len(pos_terms) + sum(neg_terms) / len(neg_terms)


@pytest.mark.parametrize("tau", [1.0, 0.5])
@pytest.mark.parametrize("fast", [True, False])
def test_sequence_info_nce_matches_the_loop(tau, fast):
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    got = sequence_info_nce(a, b, tau, fast=fast)
    assert float(got) == pytest.approx(_loop_eq8(a, b, tau), rel=1e-5)


def test_margin_regulariser_matches_the_loop():
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        a, b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
        assert float(margin_regulariser(a, b)) == pytest.approx(_loop_reg(a, b), rel=1e-5)
    # positives clearly above every negative: pos term = f+ - max f-, neg term = f+ - f-
    a = torch.eye(3)
    r = margin_regulariser(a, a.clone())
    # each row: f+ = 1, negatives (2B - 2 = 4) all 0 -> pos term 1, neg term 1
    assert float(r) == pytest.approx(2.0)


def test_mclrec_contrast_is_the_sum_of_eq9():
    g = torch.Generator().manual_seed(2)
    h1, h2, z1, z2 = (torch.randn(6, 4, generator=g) for _ in range(4))
    want = _loop_eq8(z1, z2, 1.0) + _loop_eq8(h1, z2, 1.0) + _loop_eq8(h2, z1, 1.0)
    assert float(mclrec_contrast(h1, h2, z1, z2)) == pytest.approx(want, rel=1e-5)
    reg = _loop_reg(h1, z2) + _loop_reg(h2, z1) + _loop_reg(z1, z2)
    assert float(mclrec_regulariser(h1, h2, z1, z2)) == pytest.approx(reg, rel=1e-5)


def test_plain_path_has_second_derivatives():
    a = torch.randn(4, 3, requires_grad=True)
    b = torch.randn(4, 3)
    (g,) = torch.autograd.grad(sequence_info_nce(a, b, fast=False), a, create_graph=True)
    (hv,) = torch.autograd.grad(g.sum(), a)
    assert torch.isfinite(hv).all() and hv.abs().sum() > 0


def test_augmenter_outputs_unit_rows():
    out = Augmenter(8)(torch.randn(5, 8))
    assert out.shape == (5, 8)
    assert torch.allclose(out.norm(dim=1), torch.ones(5), atol=1e-6)

"""SepCLR's terms against hand computations and a plain transcription of the paper's formulas."""

import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.functional import kernel_joint_entropy_loss
from medcl.contrastive.losses import SepCLRLoss


def _codes(n=10, dc=4, ds=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for d in (dc, dc, ds, ds)]


def plain_sepclr(c1, c2, s1, s2, is_target, tau=0.5, w=(1, 1000, 1000, 10)):
    """The paper's objective written term by term with explicit pairwise distances."""

    def align(u, v):
        return ((u - v) ** 2).sum(1).mean() / (2 * tau)

    def unif(u):
        d = torch.pdist(u) ** 2
        return torch.log(torch.exp(-d / (2 * tau)).mean())

    def jem(c, s):
        k = torch.exp(-torch.cdist(c, c) ** 2 / (2 * tau)) * torch.exp(
            -torch.cdist(s, s) ** 2 / (2 * tau))
        return torch.log(k.mean(1)).mean()

    c1, c2 = F.normalize(c1, dim=1), F.normalize(c2, dim=1)
    z1, z2 = s1.clone(), s2.clone()
    z1[~is_target] = 0
    z2[~is_target] = 0
    common = align(c1, c2) + 2 * (unif(c1) + unif(c2)) / 2
    salient = align(s1[is_target], s2[is_target]) + 2 * (unif(z1) + unif(z2)) / 2
    reg = (align(s1[~is_target], 0 * s1[~is_target]) + align(s2[~is_target], 0 * s2[~is_target]))
    reg = reg / 2
    mi = (jem(c1, z1) + jem(c2, z2)) / 2
    return w[0] * common + w[1] * salient + w[2] * reg + w[3] * mi


def test_matches_plain_transcription_values_and_gradients():
    codes = [x.requires_grad_(True) for x in _codes()]
    is_target = torch.tensor([0, 1] * 5, dtype=torch.bool)
    ours = SepCLRLoss()(*codes, is_target)["loss"]
    ref = plain_sepclr(*codes, is_target)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    for go, gr in zip(torch.autograd.grad(ours, codes), torch.autograd.grad(ref, codes),
                      strict=True):
        torch.testing.assert_close(go, gr)


def test_alignment_of_identical_views_is_zero():
    c, _, s, _ = _codes()
    is_target = torch.ones(10, dtype=torch.bool)
    out = SepCLRLoss()(c, c, s, s, is_target)
    u = torch.log(torch.exp(-torch.pdist(F.normalize(c, dim=1)) ** 2).mean())
    assert out["common"].item() == pytest.approx(2 * u.item())
    assert out["regulariser"].item() == 0.0  # no background rows


def test_background_salient_codes_only_reach_the_regulariser():
    c1, c2, s1, s2 = _codes()
    is_target = torch.tensor([1, 0] * 5, dtype=torch.bool)
    loss = SepCLRLoss()
    a = loss(c1, c2, s1, s2, is_target)
    s1b, s2b = s1.clone(), s2.clone()
    s1b[~is_target] += 5.0
    s2b[~is_target] -= 3.0
    b = loss(c1, c2, s1b, s2b, is_target)
    assert a["salient"].item() == pytest.approx(b["salient"].item())
    assert a["mi"].item() == pytest.approx(b["mi"].item())
    assert b["regulariser"].item() > a["regulariser"].item()
    # the regulariser is the mean squared norm of background salient codes over 2 tau
    want = 0.5 * ((s1[~is_target] ** 2).sum(1).mean() + (s2[~is_target] ** 2).sum(1).mean())
    assert a["regulariser"].item() == pytest.approx(want.item() / (2 * 0.5))


def test_joint_entropy_term_lower_for_independent_codes():
    g = torch.Generator().manual_seed(1)
    c = torch.randn(200, 2, generator=g, dtype=torch.float64)
    independent = torch.randn(200, 2, generator=g, dtype=torch.float64)
    dependent = c.clone()
    assert kernel_joint_entropy_loss(c, independent) < kernel_joint_entropy_loss(c, dependent)


def test_joint_entropy_by_hand_two_points():
    # two points at squared distances dc = 1 (c) and ds = 4 (s); tau = 0.5 -> K = exp(-(1 + 4))
    c = torch.tensor([[0.0], [1.0]])
    s = torch.tensor([[0.0], [2.0]])
    want = math.log((1 + math.exp(-5)) / 2)
    assert kernel_joint_entropy_loss(c, s, 0.5).item() == pytest.approx(want)


def test_batches_with_a_single_group_and_bad_input():
    c1, c2, s1, s2 = _codes()
    for flag in (True, False):
        out = SepCLRLoss()(c1, c2, s1, s2, torch.full((10,), flag))
        assert torch.isfinite(out["loss"])
    with pytest.raises(ValueError, match="bool"):
        SepCLRLoss()(c1, c2, s1, s2, torch.ones(10))
    with pytest.raises(ValueError):
        kernel_joint_entropy_loss(c1, s1[:3])

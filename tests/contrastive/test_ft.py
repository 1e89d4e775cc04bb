"""Feature Transformation (medcl.contrastive.losses.ft): the transformations by hand, NT-Xent
and MoCo modes against plain references, score statistics, and a loss-decreases smoke test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.functional import negative_interpolation, positive_extrapolation
from medcl.contrastive.losses import FeatureTransformLoss, NTXentLoss
from medcl.contrastive.momentum import FeatureQueue

pytestmark = pytest.mark.usefixtures("one_thread")


def test_transformations_by_hand():
    q, k = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    qh, kh = positive_extrapolation(q, k, torch.tensor(1.5))
    torch.testing.assert_close(qh, torch.tensor([[1.5, -0.5]]))
    torch.testing.assert_close(kh, torch.tensor([[-0.5, 1.5]]))
    n = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    out = negative_interpolation(n, torch.tensor(0.25), torch.tensor([1, 2, 0]))
    torch.testing.assert_close(out, torch.tensor([[0.25, 0.75], [0.75, 1.0], [1.0, 0.25]]))
    # extrapolation lowers the positive score: cos' = c + 2 lam (1 - lam)(1 - c) <= c
    g = torch.Generator().manual_seed(0)
    a = F.normalize(torch.randn(50, 8, generator=g), dim=1)
    b = F.normalize(torch.randn(50, 8, generator=g), dim=1)
    lam = 1 + torch.rand(50, 1, generator=g)
    ah, bh = positive_extrapolation(a, b, lam)
    c = (a * b).sum(1)
    torch.testing.assert_close((ah * bh).sum(1), c + 2 * lam[:, 0] * (1 - lam[:, 0]) * (1 - c))


def test_without_transforms_ntxent_mode_is_ntxent():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 6, generator=g, dtype=torch.float64, requires_grad=True)
    plain = FeatureTransformLoss(0.3, extrapolate=False, interpolate=False)
    out = plain(a, b)
    ref = NTXentLoss(0.3)(a, b)
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-10)
    g1 = torch.autograd.grad(out["loss"], [a, b])
    g2 = torch.autograd.grad(NTXentLoss(0.3)(a, b), [a, b])
    for x, y in zip(g1, g2, strict=True):
        torch.testing.assert_close(x, y)
    za, zb = F.normalize(a, dim=1), F.normalize(b, dim=1)
    torch.testing.assert_close(out["pos_scores"], torch.cat([(za * zb).sum(1)] * 2).detach())


def test_moco_mode_is_cross_entropy_over_queue():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 4, generator=g, dtype=torch.float64)
    queue = F.normalize(torch.randn(7, 4, generator=g, dtype=torch.float64), dim=1)
    out = FeatureTransformLoss(0.07, extrapolate=False, interpolate=False)(q, k, queue)
    zq, zk = F.normalize(q, dim=1), F.normalize(k, dim=1)
    logits = torch.cat([(zq * zk).sum(1, keepdim=True), zq @ queue.T], 1) / 0.07
    ref = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long))
    assert out["loss"].item() == pytest.approx(ref.item(), rel=1e-10)
    neg = (zq @ queue.T).detach()
    torch.testing.assert_close(out["neg_scores_mean"], neg.mean(1))
    torch.testing.assert_close(out["neg_scores_var"], neg.var(1, unbiased=False))
    out["loss"].backward()
    assert q.grad is not None


def test_transforms_move_the_score_distributions():
    torch.manual_seed(3)
    q, k = torch.randn(256, 16), torch.randn(256, 16)
    k = q + 0.3 * k  # positives fairly aligned
    queue = torch.randn(512, 16)
    plain = FeatureTransformLoss(extrapolate=False, interpolate=False)(q, k, queue)
    ft = FeatureTransformLoss()(q, k, queue)
    # extrapolation: harder positives; interpolation: mixed negatives are less spread out
    # E[2 lam (1 - lam)] = -1.6 for lam ~ 1 + Beta(2, 2): cos drops by ~1.6 (1 - cos)
    gap = 1 - plain["pos_scores"].mean()
    assert ft["pos_scores"].mean() < plain["pos_scores"].mean() - 0.8 * gap
    assert ft["neg_scores_var"].mean() < 0.9 * plain["neg_scores_var"].mean()


def test_errors():
    with pytest.raises(ValueError, match="one shape"):
        FeatureTransformLoss()(torch.randn(4, 3), torch.randn(5, 3))
    with pytest.raises(ValueError, match="queue"):
        FeatureTransformLoss()(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 2))


def test_loss_decreases_ntxent_mode():
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = 4.0 + 0.5 * torch.randn(16, 10)  # embeddings start collapsed
        model = torch.nn.Linear(10, 16)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        loss_fn = FeatureTransformLoss(temperature=0.2)
        losses = []
        for _ in range(30):
            x0, x1 = (base + 0.05 * torch.randn_like(base) for _ in range(2))
            loss = loss_fn(model(x0), model(x1))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:3]) / 3


def test_loss_decreases_moco_mode():
    """Free query embeddings learn against fixed keys and a fixed queue (a tiny linear MoCo with a
    momentum key encoder collapses from any start within a few dozen steps, transforms or not,
    so the mechanism is tested on free embeddings; the queue and EMA have their own tests)."""
    for seed in (0, 1):
        torch.manual_seed(seed)
        keys = F.normalize(torch.randn(16, 16), dim=1)
        queue = FeatureQueue(64, 16)
        queue.push(torch.randn(64, 16))
        q = torch.nn.Parameter(torch.randn(16, 16))
        opt = torch.optim.Adam([q], lr=0.05)
        loss_fn = FeatureTransformLoss(temperature=0.2)
        losses = []
        for _ in range(30):
            loss = loss_fn(q, keys, queue.features)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:3]) / 3

"""Hydra / SimLAP (medcl.contrastive.losses.hydra): a per-anchor hand computation, the detached
probe, refusal without labels, and a loss-decreases smoke test."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.losses import HydraLoss

pytestmark = pytest.mark.usefixtures("one_thread")


def _by_hand(loss_fn, z, y, c):
    """Loop over anchors: filter every feature with the anchor's gate, then the multi-positive
    InfoNCE with positives of class c_i and negatives outside {y_i, c_i}."""
    total, count = 0.0, 0
    for i in range(len(y)):
        g = loss_fn.gates(y[i:i + 1], c[i:i + 1])[0].detach()
        f = F.normalize(g * z, dim=1)
        s = (f @ f[i]).tolist()
        pos = [j for j in range(len(y)) if j != i and y[j] == c[i]]
        neg = [j for j in range(len(y)) if y[j] not in (y[i], c[i])]
        if not pos:
            continue
        den = sum(math.exp(s[j] / loss_fn.temperature) for j in pos + neg)
        total += -sum(s[p] / loss_fn.temperature - math.log(den) for p in pos) / len(pos)
        count += 1
    return total / count


def test_matches_hand_computation():
    torch.manual_seed(0)
    loss_fn = HydraLoss(n_classes=4, dim=6, temperature=0.1).double()
    z = torch.randn(12, 6, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 3] * 3)
    c = torch.tensor([1, 1, 3, 0, 2, 3, 0, 1, 3, 2, 2, 0])  # mixed pairs, some y == c
    out = loss_fn(z, y, partner=c)
    assert out["loss"].item() == pytest.approx(_by_hand(loss_fn, z, y, c), rel=1e-10)
    assert set(out) == {"loss", "contrastive"}


def test_random_partners_come_from_the_batch_and_probe_is_detached():
    torch.manual_seed(1)
    loss_fn = HydraLoss(n_classes=10, dim=5, probe_dim=7)
    z = torch.randn(8, 5, requires_grad=True)
    h = torch.randn(8, 7, requires_grad=True)
    y = torch.tensor([2, 2, 5, 5, 7, 7, 2, 5])
    out = loss_fn(z, y, h=h, generator=torch.Generator().manual_seed(0))
    out["loss"].backward()
    assert h.grad is None  # the probe never shapes the representation
    assert loss_fn.probe.weight.grad is not None and z.grad is not None
    assert 0.0 <= out["probe_accuracy"].item() <= 1.0
    # the loss with the drawn partners equals the loss with those partners given explicitly
    gen = torch.Generator().manual_seed(0)
    drawn = torch.unique(y)[torch.randint(3, (8,), generator=gen)]
    again = loss_fn(z.detach(), y, partner=drawn)["contrastive"]
    assert again.item() == pytest.approx(out["contrastive"].item(), rel=1e-6)


def test_refuses_without_labels_and_bad_shapes():
    loss_fn = HydraLoss(n_classes=3, dim=4)
    with pytest.raises(ValueError, match="needs class labels"):
        loss_fn(torch.randn(6, 4), None)
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        loss_fn(torch.randn(6, 5), torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        loss_fn(torch.randn(6, 4), torch.full((6,), 3))


def test_loss_decreases_on_separable_data():
    for seed in (0, 1):
        torch.manual_seed(seed)
        y = torch.arange(32) % 4
        base = 4.0 + 0.5 * torch.randn(4, 10)[y] + 0.1 * torch.randn(32, 10)
        model = torch.nn.Linear(10, 16)
        loss_fn = HydraLoss(n_classes=4, dim=16, probe_dim=10)
        opt = torch.optim.Adam([*model.parameters(), *loss_fn.parameters()], lr=0.02)
        losses = []
        for _ in range(30):
            x = base + 0.05 * torch.randn_like(base)
            out = loss_fn(model(x), y, h=x)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            losses.append(out["contrastive"].item())
        assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:3]) / 3

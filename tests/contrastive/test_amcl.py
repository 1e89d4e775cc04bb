"""AMCL (medcl.contrastive.losses.amcl, heads.PairwiseTemperature / MultiProjectionHeads): with a
constant temperature each base equals our NT-Xent / DCL / SupCon plus the regulariser by hand;
the temperature MLP equals the MLP on the concatenation; smoke test."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medcl.contrastive.heads import MultiProjectionHeads, PairwiseTemperature
from medcl.contrastive.losses import AMCLLoss, DCLLoss, NTXentLoss, SupConLoss

pytestmark = pytest.mark.usefixtures("one_thread")


class _Const(nn.Module):
    def __init__(self, tau):
        super().__init__()
        self.tau = tau

    def forward(self, a, b):
        return torch.full((a.shape[0], b.shape[0]), self.tau, dtype=a.dtype)


@pytest.mark.parametrize("base", ["ntxent", "dcl", "supcon"])
def test_constant_temperature_reduces_to_the_base_loss(base):
    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(2, 10, 6, generator=g, dtype=torch.float64, requires_grad=True)
    z1 = torch.randn(2, 10, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (10,), generator=g)
    taus = [0.2, 0.5]
    loss_fn = AMCLLoss(dim=6, n_heads=2, base=base, beta=0.1)
    loss_fn.temperatures = nn.ModuleList(_Const(t) for t in taus)
    out = loss_fn(z0, z1, labels=y)
    want = []
    for c, t in enumerate(taus):
        if base == "ntxent":
            ref = NTXentLoss(t)(z0[c], z1[c])
        elif base == "dcl":
            ref = DCLLoss(t)(z0[c], z1[c])
        else:
            ref = SupConLoss(t)(torch.stack([z0[c], z1[c]], dim=1), y)
        want.append(ref + 0.1 * (3 * math.log(t) + 1 / t))  # beta [(d/2) log tau + 1/tau]
    assert out["loss"].item() == pytest.approx(sum(w.item() for w in want) / 2, rel=1e-10)
    g1 = torch.autograd.grad(out["loss"], [z0, z1])
    g2 = torch.autograd.grad(sum(want) / 2, [z0, z1])
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b)
    assert out["tau_mean"].item() == pytest.approx(0.35)


def test_pairwise_temperature_is_the_mlp_on_the_concatenation():
    torch.manual_seed(0)
    pt = PairwiseTemperature(4, hidden=5, lower=0.1, upper=0.9)
    za, zb = torch.randn(3, 4), torch.randn(6, 4)
    first = nn.Linear(8, 5)
    with torch.no_grad():
        first.weight.copy_(torch.cat([pt.a.weight, pt.b.weight], dim=1))
        first.bias.copy_(pt.a.bias)
    pairs = torch.cat([za[:, None].expand(3, 6, 4), zb[None].expand(3, 6, 4)], dim=-1)
    want = 0.1 + 0.8 * torch.sigmoid(pt.out(first(pairs).relu())).squeeze(-1)
    got = pt(za, zb)
    torch.testing.assert_close(got, want)
    big = pt(100 * za, -100 * zb)
    assert big.min() >= 0.1 - 1e-6 and big.max() <= 0.9 + 1e-6  # saturates, stays in range
    with pytest.raises(ValueError, match="lower < upper"):
        PairwiseTemperature(4, lower=0.5, upper=0.5)


def test_temperature_network_gets_gradient_and_errors():
    loss_fn = AMCLLoss(dim=4, n_heads=3)
    out = loss_fn(torch.randn(3, 8, 4), torch.randn(3, 8, 4))
    out["loss"].backward()
    assert all(p.grad is not None for p in loss_fn.parameters())
    assert out["per_head"].shape == (3,)
    assert 0.1 < out["tau_mean"].item() < 1.0
    with pytest.raises(ValueError, match="labels"):
        AMCLLoss(dim=4, base="supcon", n_heads=1)(torch.randn(8, 4), torch.randn(8, 4))
    with pytest.raises(ValueError, match="base"):
        AMCLLoss(dim=4, base="simclr")
    with pytest.raises(ValueError, match=r"\(3, N, 4\)"):
        loss_fn(torch.randn(2, 8, 4), torch.randn(2, 8, 4))


def test_loss_decreases_on_separable_data():
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = 4.0 + 0.5 * torch.randn(16, 10)  # embeddings start collapsed
        heads = MultiProjectionHeads(10, n_heads=3, hidden_dim=16, out_dim=8)
        loss_fn = AMCLLoss(dim=8, n_heads=3)
        opt = torch.optim.Adam([*heads.parameters(), *loss_fn.parameters()], lr=0.02)
        losses = []
        for _ in range(30):
            x0, x1 = (base + 0.05 * torch.randn_like(base) for _ in range(2))
            loss = loss_fn(heads(x0), heads(x1))["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < sum(losses[:3]) / 3 - 0.3

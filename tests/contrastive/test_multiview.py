"""MV-InfoNCE and MV-DHEL (medcl.contrastive.losses.multiview): hand references, NT-Xent at M = 2,
chunking, and a loss-decreases smoke test."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.functional import multiview_dhel, multiview_info_nce
from medcl.contrastive.losses import MVDHELLoss, MVInfoNCELoss, NTXentLoss

pytestmark = pytest.mark.usefixtures("one_thread")

def _views(m, n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(m, n, d, generator=g, dtype=torch.float64)
    return F.normalize(v, dim=-1).requires_grad_(True)


def _mv_infonce_by_hand(v, tau):
    v = v.detach()
    m, n, _ = v.shape
    total = 0.0
    for i in range(n):
        num = sum(math.exp(float(v[a, i] @ v[b, i]) / tau)
                  for a in range(m) for b in range(m) if a != b)
        for lv in range(m):
            den = sum(math.exp(float(v[lv, i] @ v[mm, j]) / tau)
                      for mm in range(m) for j in range(n) if (mm, j) != (lv, i))
            total += -math.log(num / den)
    return total / (m * n)


def _mv_dhel_by_hand(v, tau):
    v = v.detach()
    m, n, _ = v.shape
    total = 0.0
    for i in range(n):
        num = sum(math.exp(float(v[a, i] @ v[b, i]) / tau)
                  for a, b in itertools.combinations(range(m), 2))
        den = 1.0
        for lv in range(m):
            den *= sum(math.exp(float(v[lv, i] @ v[lv, j]) / tau) for j in range(n) if j != i)
        total += -math.log(num / den)
    return total / n


@pytest.mark.parametrize("m", [2, 3, 4])
def test_values_match_hand_computation(m):
    v = _views(m, 5, 3, seed=m)
    assert multiview_info_nce(v, 0.5).item() == pytest.approx(_mv_infonce_by_hand(v, 0.5),
                                                              rel=1e-10)
    assert multiview_dhel(v, 0.3).item() == pytest.approx(_mv_dhel_by_hand(v, 0.3), rel=1e-10)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_two_view_mv_infonce_is_ntxent_minus_log2(tau):
    v = _views(2, 16, 8, seed=1)
    a, b = v[0].detach().clone().requires_grad_(True), v[1].detach().clone().requires_grad_(True)
    ours = MVInfoNCELoss(temperature=tau)([a, b])
    ref = NTXentLoss(temperature=tau)(a, b)
    assert ours.item() == pytest.approx(ref.item() - math.log(2), abs=1e-10)
    g_ours = torch.autograd.grad(ours, [a, b])
    g_ref = torch.autograd.grad(NTXentLoss(temperature=tau)(a, b), [a, b])
    for x, y in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(x, y)


def test_chunking_changes_nothing_and_gradients_match():
    v = _views(4, 13, 6, seed=3)
    for fn in (multiview_info_nce, multiview_dhel):
        full = fn(v, 0.5)
        g_full, = torch.autograd.grad(full, v)
        part = fn(v, 0.5, chunk_size=4)
        g_part, = torch.autograd.grad(part, v)
        assert part.item() == pytest.approx(full.item(), rel=1e-12)
        torch.testing.assert_close(g_part, g_full)
    # gradients of the log-space loss equal those of the hand formula (autograd on float64)
    small = _views(3, 4, 3, seed=4)
    for fn in (multiview_info_nce, multiview_dhel):
        torch.autograd.gradcheck(lambda x, fn=fn: fn(x, 0.5, chunk_size=3), (small,))


def test_module_normalises_and_accepts_lists():
    v = torch.randn(3, 8, 4, dtype=torch.float64)
    want = multiview_dhel(F.normalize(v, dim=-1), 0.5)
    assert MVDHELLoss()(v).item() == pytest.approx(want.item())
    assert MVDHELLoss()(list(v)).item() == pytest.approx(want.item())
    with pytest.raises(ValueError, match="M >= 2"):
        multiview_dhel(F.normalize(v[:1], dim=-1))
    with pytest.raises(ValueError, match=">= 2 views"):
        MVInfoNCELoss()([v[0]])


@pytest.mark.parametrize("cls", [MVInfoNCELoss, MVDHELLoss])
def test_loss_decreases_on_separable_data(cls):
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = 4.0 + 0.5 * torch.randn(16, 10)  # items close together: embeddings start collapsed
        model = torch.nn.Linear(10, 16)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        loss_fn = cls(temperature=0.5)
        losses = []
        for _ in range(25):
            views = torch.stack([model(base + 0.05 * torch.randn_like(base)) for _ in range(4)])
            loss = loss_fn(views)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < 0.7 * losses[0]  # observed ~0.15 (InfoNCE), ~0.58 (DHEL)

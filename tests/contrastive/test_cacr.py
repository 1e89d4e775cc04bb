"""CACR (medcl.contrastive.losses.cacr): against a loop over the authors' definition, closed
forms, the direction of the conditional weights, and a loss-decreases smoke test."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.functional import cacr_attraction, cacr_repulsion
from medcl.contrastive.losses import CACRLoss

pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(views, tau_pos, tau_neg):
    """CA + CR written per query and per pair of views with explicit differences."""
    m, n, _ = views.shape
    ca = 0.0
    for x in range(m):
        others = torch.stack([views[y] for y in range(m) if y != x])  # (M-1, N, D)
        cost = (views[x][None] - others).pow(2).sum(-1).T  # (N, M-1)
        ca = ca + (cost * torch.softmax(tau_pos * cost, dim=1)).sum(1).mean()
    cr, pairs = 0.0, 0
    for x in range(m):
        for y in range(x + 1, m):
            diff = (views[x][:, None, :] - views[y][None, :, :]).pow(2).sum(-1)  # (N, N)
            keep = ~torch.eye(n, dtype=torch.bool)
            cost = -diff[keep].reshape(n, n - 1)
            cr = cr + (cost * torch.softmax(tau_neg * cost, dim=1)).sum(1).mean()
            pairs += 1
    return ca / m + cr / pairs


@pytest.mark.parametrize(("m", "tau_pos", "tau_neg"), [(2, 1.0, 1.0), (5, 1.0, 0.9),
                                                       (3, 0.5, 2.0)])
def test_matches_reference_values_and_gradients(m, tau_pos, tau_neg):
    g = torch.Generator().manual_seed(m)
    raw = torch.randn(m, 7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    ours = CACRLoss(tau_pos, tau_neg)(raw)
    ref = _reference(F.normalize(raw, dim=-1), tau_pos, tau_neg)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-10)
    g1, = torch.autograd.grad(ours, raw)
    g2, = torch.autograd.grad(ref, raw)
    torch.testing.assert_close(g1, g2)


def test_closed_forms_and_weight_direction():
    # one positive: the weight is 1 and the attraction is the mean squared distance
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [0.0, 1.0]]])
    assert cacr_attraction(a).item() == pytest.approx((2.0 + 0.0) / 2)
    # two positives at squared distances 0 and 2 from the query: the far one weighs more
    v = torch.tensor([[[1.0, 0.0]] * 2, [[1.0, 0.0]] * 2, [[0.0, 1.0]] * 2])
    w_far = torch.exp(torch.tensor(2.0)) / (1 + torch.exp(torch.tensor(2.0)))
    got = cacr_attraction(v[[0, 1, 2]], tau_pos=1.0)
    # queries 0 and 1: costs (0, 2) -> 2 w_far; query 2: costs (2, 2) -> 2
    assert got.item() == pytest.approx(((2 * w_far) * 2 + 2).item() / 3, rel=1e-6)
    assert got.item() > cacr_attraction(v, tau_pos=0.0).item()  # uniform weights: less
    # repulsion: the closer negative weighs more, so CR < the uniform average of -d^2
    r = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]] * 2)
    assert cacr_repulsion(r, tau_neg=1.0).item() > cacr_repulsion(r, tau_neg=0.0).item()
    uniform = -(2.0 + 4.0) / 2  # each item: one negative at d^2 = 2, one at d^2 = 4 or 2
    assert cacr_repulsion(r[:, :2], tau_neg=0.0).item() == pytest.approx(-2.0)
    assert cacr_repulsion(r, tau_neg=0.0).item() == pytest.approx(
        (uniform + -2.0 + uniform) / 3)


def test_terms_and_errors():
    out = CACRLoss()(torch.randn(5, 6, 4), return_terms=True)
    assert out["loss"].item() == pytest.approx((out["attraction"] + out["repulsion"]).item())
    with pytest.raises(ValueError, match=r"\(M, N, D\)"):
        CACRLoss()(torch.randn(6, 4))
    with pytest.raises(ValueError, match="M >= 2"):
        CACRLoss()(torch.randn(1, 6, 4))


def test_loss_decreases_on_separable_data():
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = 4.0 + 0.5 * torch.randn(16, 10)  # embeddings start collapsed
        model = torch.nn.Linear(10, 16)
        opt = torch.optim.Adam(model.parameters(), lr=0.05)
        loss_fn = CACRLoss()
        losses = []
        for _ in range(25):
            views = torch.stack([model(base + 0.05 * torch.randn_like(base)) for _ in range(5)])
            loss = loss_fn(views)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < losses[0] - 0.5

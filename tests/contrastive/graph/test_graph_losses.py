"""GRACE's loss through the core kernel against a loop transcription of the paper's eq. 1-2;
gCooL's DeCA, ReSC and schedule against dense / loop transcriptions; a short GRACE run."""

import math

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.graph import (
    GCN,
    ProjectionHead,
    community_assign,
    deca_loss,
    drop_edges,
    gcool_weights,
    grace_loss,
    mask_features,
    node_cross_view_loss,
    resc_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _grace_loop(u, v, tau):
    """GRACE eq. 1-2 written out node by node (Zhu et al. 2020)."""
    u, v = F.normalize(u, dim=1).double(), F.normalize(v, dim=1).double()
    n = u.shape[0]

    def ell(a, b, i):
        pos = math.exp(float(a[i] @ b[i]) / tau)
        inter = sum(math.exp(float(a[i] @ b[k]) / tau) for k in range(n) if k != i)
        intra = sum(math.exp(float(a[i] @ a[k]) / tau) for k in range(n) if k != i)
        return -math.log(pos / (pos + inter + intra))

    return sum(ell(u, v, i) + ell(v, u, i) for i in range(n)) / (2 * n)


@pytest.mark.parametrize("chunk", [None, 3])
def test_grace_loss_matches_loop(chunk):
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(7, 5, generator=g), torch.randn(7, 5, generator=g)
    got = grace_loss(u, v, temperature=0.5, chunk_size=chunk)
    assert got.item() == pytest.approx(_grace_loop(u, v, 0.5), rel=1e-5)


def test_grace_chunked_gradients_equal_unchunked():
    g = torch.Generator().manual_seed(1)
    u, v = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g)
    grads = []
    for chunk in (None, 2):
        a, b = u.clone().requires_grad_(), v.clone().requires_grad_()
        grace_loss(a, b, 0.4, chunk_size=chunk).backward()
        grads.append((a.grad, b.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_grace_anchor_subset_matches_loop_terms():
    g = torch.Generator().manual_seed(2)
    u, v = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g)
    idx = torch.tensor([0, 2])
    got = grace_loss(u, v, 0.5, anchor_index=idx)
    un, vn = F.normalize(u, dim=1).double(), F.normalize(v, dim=1).double()

    def ell(a, b, i):
        s = torch.cat([(a[i] @ b.T), (a[i] @ a.T)]) / 0.5
        keep = torch.ones(12, dtype=torch.bool)
        keep[6 + i] = False
        return float(torch.logsumexp(s[keep], 0) - s[i])

    want = sum(ell(un, vn, i) + ell(vn, un, i) for i in (0, 2)) / 4
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_node_cross_view_loss_matches_loop():
    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    an, bn = F.normalize(a, dim=1).double(), F.normalize(b, dim=1).double()
    s = an @ bn.T / 0.5
    want = 0.5 * ((torch.logsumexp(s, 1) - s.diag()).mean()
                  + (torch.logsumexp(s.T, 1) - s.diag()).mean())
    assert node_cross_view_loss(a, b, 0.5).item() == pytest.approx(float(want), rel=1e-5)


def test_deca_matches_dense_formula():
    g = torch.Generator().manual_seed(4)
    n, k = 8, 3
    r = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64), 1)
    ei = torch.tensor([[0, 1, 1, 2, 3, 5, 6, 6, 0], [1, 0, 2, 1, 4, 6, 5, 7, 1]])  # one dup
    a = torch.zeros(n, n, dtype=torch.float64)
    a[ei[0], ei[1]] = 1
    f = r.T @ a @ r
    lam = 0.7
    want = ((lam * f.sum() - (n - 1 + lam) * f.trace()) / (n * (n - 1))
            + (r.T @ r).trace() / (2 * n))
    assert deca_loss(r, ei, lam).item() == pytest.approx(want.item(), rel=1e-6)


def test_resc_matches_loop_with_rbf_weights():
    g = torch.Generator().manual_seed(5)
    n, k, tau, gamma = 10, 4, 0.5, 0.3
    h1, h2 = torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)
    r1, r2 = torch.softmax(torch.randn(n, k, generator=g), 1), torch.softmax(
        torch.randn(n, k, generator=g), 1)
    i1, i2 = r1.argmax(1), r2.argmax(1)

    def direction(h, idx_other, h_other):
        cents = {c: h_other[idx_other == c].mean(0) for c in range(k) if (idx_other == c).any()}
        cn = {c: F.normalize(v, dim=0) for c, v in cents.items()}
        total = 0.0
        for i in range(n):
            hi = F.normalize(h[i], dim=0)
            own = int(idx_other[i])
            pos = math.exp(float(hi @ cn[own]) / tau)
            neg = sum(math.exp(-gamma * float((cn[own] - cn[c]).pow(2).sum()))
                      * math.exp(float(hi @ cn[c]) / tau) for c in cn if c != own)
            total += -math.log(pos / (pos + neg))
        return total / n

    want = 0.5 * (direction(h1, i2, h2) + direction(h2, i1, h1))
    got = resc_loss(h1, h2, r1, r2, temperature=tau, gamma=gamma)
    assert got.item() == pytest.approx(want, rel=1e-5)


def test_community_assign_detaches_h_and_trains_centres():
    h = torch.randn(6, 3, requires_grad=True)
    c = torch.randn(2, 3, requires_grad=True)
    r = community_assign(h, c, 0.5)
    torch.testing.assert_close(r.sum(1), torch.ones(6))
    deca_loss(r, torch.tensor([[0, 1], [1, 0]])).backward()
    assert h.grad is None and c.grad is not None


def test_gcool_schedule():
    assert gcool_weights(0) == (1.0, 0.0)
    d, r = gcool_weights(50)
    assert d == pytest.approx(0.5 * math.exp(-0.1))
    assert r == pytest.approx(0.5 * (1 - math.exp(-0.1)))
    assert gcool_weights(100) == (0.0, 0.0) and gcool_weights(400) == (0.0, 0.0)


def test_augmentations():
    g = torch.Generator().manual_seed(0)
    ei = torch.randint(0, 50, (2, 4000), generator=g)
    kept = drop_edges(ei, 0.3, g)
    assert 0.65 < kept.shape[1] / 4000 < 0.75
    x = torch.ones(20, 400)
    m = mask_features(x, 0.25, g)
    cols = (m == 0).all(0)  # whole feature dimensions are masked
    assert ((m == 0).any(0) == cols).all() and 0.15 < cols.float().mean() < 0.35


def test_short_grace_run_lowers_the_loss():
    """Two planted communities with community-correlated features: 30 GRACE steps lower the
    loss (mechanism check, several seeds)."""
    for seed in range(3):
        torch.manual_seed(seed)
        g = torch.Generator().manual_seed(seed)
        n = 60
        y = torch.arange(n) % 2
        src, dst = torch.randint(0, n, (2, 600), generator=g)
        keep = (y[src] == y[dst]) | (torch.rand(600, generator=g) < 0.1)
        ei = torch.cat([torch.stack([src[keep], dst[keep]]), torch.stack([dst[keep], src[keep]])],
                       1)
        x = torch.randn(n, 8, generator=g) + y[:, None].float()
        enc, head = GCN(8, 32, 16), ProjectionHead(16, 16)
        opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=5e-3)
        losses = []
        for _ in range(30):
            h1 = head(enc(mask_features(x, 0.2, g), drop_edges(ei, 0.3, g)))
            h2 = head(enc(mask_features(x, 0.2, g), drop_edges(ei, 0.3, g)))
            loss = grace_loss(h1, h2, 0.5)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.05, (seed, losses[:5], losses[-5:])

"""The three methods train: the loss of each decreases on a fixed batch of view pairs."""

import pytest
import torch

from medcl.contrastive.points import ViewPair, build_point_method

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(seed=0, b=2, n=128):
    """Two clouds of three planted blobs (foreground) on a plane (background); view 2 is view 1
    permuted, jittered and shifted, so the correspondences are known."""
    g = torch.Generator().manual_seed(seed)
    xs, segs = [], []
    for _ in range(b):
        plane = torch.cat([torch.rand(n // 2, 2, generator=g) * 4, torch.zeros(n // 2, 1)], 1)
        blobs = [torch.randn(n // 6 + (1 if k < (n // 2) % 3 else 0), 3, generator=g) * 0.1
                 + torch.tensor([k + 0.5, 2.0, 0.5]) for k in range(3)]
        xs.append(torch.cat([plane, *blobs]))
        segs.append(torch.cat([torch.zeros(n // 2, dtype=torch.long),
                               *[torch.full((len(bl),), k + 1) for k, bl in enumerate(blobs)]]))
    x1, s1 = torch.stack(xs), torch.stack(segs)
    perm = torch.randperm(n, generator=g)
    x2 = x1[:, perm] + 0.01 * torch.randn(b, n, 3, generator=g) + 0.2
    s2 = s1[:, perm]
    inv = torch.argsort(perm)
    corr = torch.stack([torch.arange(n), inv], 1)[None].expand(b, -1, -1)
    fg = torch.tensor([False, True, True, True]).expand(b, -1)
    return ViewPair(x1, x2, s1, s2, fg, corr)


@pytest.mark.parametrize("method", ["fac", "pointcontrast", "simclr"])
def test_loss_decreases(method):
    torch.manual_seed(0)
    model = build_point_method(method, backbone="pointnet", width=16, out_dim=16, proj_dim=16,
                               samples=96)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _batch()
    losses = []
    for _ in range(30):
        torch.manual_seed(1)  # the same point samples every step: the batch is fixed
        loss, log = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(log["loss"])
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < 0.9 * losses[0], losses
    if method == "fac":
        assert set(log) == {"loss", "region", "fgbg", "corr"}


def test_fac_terms_through_dgcnn_have_gradients():
    torch.manual_seed(0)
    model = build_point_method("fac", backbone="dgcnn", width=8, out_dim=8, proj_dim=8,
                               samples=64, k=4)
    loss, _ = model(_batch(n=64))
    loss.backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.scn.out.weight.grad.abs().sum() > 0

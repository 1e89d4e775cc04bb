"""SwAV (medcl.contrastive.losses.swav, medcl.contrastive.prototypes): equal to lightly's SwaVLoss,
Sinkhorn marginals, prototype normalisation and freezing, queues, distributed Sinkhorn, smoke."""

from __future__ import annotations

import pytest
import torch

from medcl.contrastive.functional import sinkhorn_knopp
from medcl.contrastive.losses import SwAVLoss
from medcl.contrastive.prototypes import Prototypes, SwAVQueues

lightly_loss = pytest.importorskip("lightly.loss")



pytestmark = pytest.mark.usefixtures("one_thread")

def _scores(n_crops, b, k, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = torch.nn.functional.normalize(torch.randn(n_crops, b, 16, generator=g, dtype=dtype), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(k, 16, generator=g, dtype=dtype), dim=-1)
    return [(zi @ c.T).requires_grad_(True) for zi in z]


@pytest.mark.parametrize(("n_high", "n_low", "queue"), [(2, 0, False), (2, 4, False),
                                                         (2, 6, True), (3, 2, True)])
def test_equals_lightly_values_and_gradients(n_high, n_low, queue):
    crops = _scores(n_high + n_low, 24, 30, seed=n_high + n_low)
    q = [s.detach() for s in _scores(n_high, 40, 30, seed=99)] if queue else None
    ours = SwAVLoss()(crops[:n_high], crops[n_high:], q)
    g_ours = torch.autograd.grad(ours, crops)
    ref = lightly_loss.SwaVLoss()(crops[:n_high], crops[n_high:], q)
    g_ref = torch.autograd.grad(ref.sum(), crops)
    assert ours.item() == pytest.approx(ref.item(), abs=1e-5)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_sinkhorn_marginals_and_stability():
    g = torch.Generator().manual_seed(0)
    scores = 0.2 * torch.randn(64, 10, generator=g, dtype=torch.float64)  # cosine-sized
    q = sinkhorn_knopp(scores, iterations=300, epsilon=0.05)
    torch.testing.assert_close(q.sum(1), torch.ones(64, dtype=torch.float64))  # one code/sample
    # equipartition: every prototype receives B / K of the mass
    torch.testing.assert_close(q.sum(0), torch.full((10,), 6.4, dtype=torch.float64),
                               atol=1e-6, rtol=0)
    q3 = sinkhorn_knopp(scores, iterations=3)
    torch.testing.assert_close(q3.sum(1), torch.ones(64, dtype=torch.float64))  # exact rows
    plain = (scores / 0.05).softmax(1).sum(0)  # codes without the equipartition constraint
    assert (q3.sum(0) - 6.4).abs().max() < 0.5 * (plain - 6.4).abs().max()
    # scores above 88 eps overflow exp in float32 without the max offset (lightly gives NaN)
    big = scores.float() + 4.5
    assert not torch.isfinite(lightly_loss.swav_loss.sinkhorn(big)).all()
    assert torch.isfinite(sinkhorn_knopp(big)).all()
    torch.testing.assert_close(sinkhorn_knopp(big), sinkhorn_knopp(scores.float()))


def test_prototypes_normalise_freeze_and_score():
    protos = Prototypes(8, 5, frozen_epochs=1)
    with torch.no_grad():
        protos.layer.weight.mul_(3.0)
    protos.normalize_()
    torch.testing.assert_close(protos.weight.norm(dim=1), torch.ones(5))
    scores = protos(torch.randn(4, 8) * 10)
    assert scores.shape == (4, 5) and scores.abs().max() <= 1 + 1e-6  # cosines
    scores.sum().backward()
    assert protos.cancel_gradients(epoch=0) and protos.weight.grad is None
    protos(torch.randn(4, 8)).sum().backward()
    assert not protos.cancel_gradients(epoch=1) and protos.weight.grad is not None
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        protos(torch.randn(4, 7))


def test_queues_start_epoch_and_scores():
    protos = Prototypes(4, 3)
    queues = SwAVQueues(n_crops=2, size=6, dim=4, start_epoch=2)
    assert queues.scores(protos, epoch=5) is None  # empty
    queues.push([torch.randn(4, 4), torch.randn(4, 4)])
    assert queues.scores(protos, epoch=1) is None  # before start_epoch
    out = queues.scores(protos, epoch=2)
    assert [o.shape for o in out] == [(4, 3), (4, 3)] and not out[0].requires_grad
    with pytest.raises(ValueError, match="2 crops"):
        queues.push([torch.randn(4, 4)])


def test_loss_decreases_on_separable_data():
    for seed in (0, 1):
        torch.manual_seed(seed)
        base = 3.0 * torch.randn(8, 10)[torch.arange(32) % 8] + 0.3 * torch.randn(32, 10)
        model = torch.nn.Linear(10, 16)
        protos = Prototypes(16, 8, frozen_epochs=0)
        opt = torch.optim.Adam([*model.parameters(), *protos.parameters()], lr=0.05)
        loss_fn = SwAVLoss()
        losses = []
        for _ in range(20):
            protos.normalize_()
            crops = [protos(model(base + 0.1 * torch.randn_like(base))) for _ in range(4)]
            loss = loss_fn(crops[:2], crops[2:])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        assert sum(losses[-5:]) / 5 < 0.8 * losses[0]

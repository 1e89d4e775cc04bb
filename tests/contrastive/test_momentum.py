"""Momentum encoder and FIFO queue (medcl.contrastive.momentum)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medcl.contrastive.momentum import FeatureQueue, MomentumEncoder


def test_queue_is_fifo_with_wraparound():
    q = FeatureQueue(size=5, dim=2)
    assert len(q) == 0 and q.features.shape == (0, 2)
    rows = torch.arange(16, dtype=torch.float32).reshape(8, 2)  # row r = (2r, 2r + 1)
    q.push(rows[:3])
    torch.testing.assert_close(q.features, rows[:3])
    q.push(rows[3:5])
    torch.testing.assert_close(q.features, rows[:5])  # full
    q.push(rows[5:7])  # the two oldest leave
    assert len(q) == 5
    torch.testing.assert_close(q.features, rows[2:7])
    q.push(rows)  # a batch larger than the queue keeps its newest rows
    torch.testing.assert_close(q.features, rows[3:8])
    state = q.state_dict()
    assert set(state) == {"queue", "ptr", "count"}
    q2 = FeatureQueue(5, 2)
    q2.load_state_dict(state)
    torch.testing.assert_close(q2.features, q.features)
    with pytest.raises(ValueError, match=r"\(B, 2\)"):
        q.push(torch.zeros(3, 4))


def test_pushed_features_are_detached_copies():
    q = FeatureQueue(4, 3)
    x = torch.randn(2, 3, requires_grad=True)
    q.push(x)
    assert not q.features.requires_grad
    with torch.no_grad():
        x.add_(1.0)
    assert not torch.equal(q.features, x.detach())


def test_momentum_update_is_the_ema():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    key = MomentumEncoder(online, momentum=0.9)
    assert all(not p.requires_grad for p in key.parameters())
    before = [p.detach().clone() for p in key.encoder.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    online(torch.randn(8, 3))  # changes the batch-norm running statistics
    key.update(online)
    for b, pk, pq in zip(before, key.encoder.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(pk, 0.9 * b + 0.1 * pq)
    torch.testing.assert_close(key.encoder[1].running_mean, online[1].running_mean)
    key.update(online, momentum=0.0)  # m = 0 copies
    for pk, pq in zip(key.encoder.parameters(), online.parameters(), strict=True):
        torch.testing.assert_close(pk, pq)
    out = key(torch.randn(2, 3))
    assert not out.requires_grad
    with pytest.raises(ValueError, match="momentum"):
        MomentumEncoder(online, momentum=1.5)

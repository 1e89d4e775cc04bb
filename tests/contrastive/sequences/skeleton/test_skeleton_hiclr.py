"""HiCLR's maths against loop transcriptions, and the MoCo model's training step."""

import math

import pytest
import torch

from medcl.contrastive.sequences.skeleton.augment import GrowingAugment
from medcl.contrastive.sequences.skeleton.functional import (
    distribution_matching,
    hierarchical_consistency,
    moco_logits,
)
from medcl.contrastive.sequences.skeleton.graph import LAYOUTS, spatial_adjacency
from medcl.contrastive.sequences.skeleton.hiclr import HiCLR
from medcl.contrastive.sequences.skeleton.stgcn import STGCN

pytestmark = pytest.mark.usefixtures("one_thread")


def _dm_loop(strong, weak):
    total = 0.0
    for i in range(strong.shape[0]):
        zw = sum(math.exp(v) for v in weak[i].tolist())
        zs = sum(math.exp(v) for v in strong[i].tolist())
        for j in range(strong.shape[1]):
            p = math.exp(float(weak[i, j])) / zw
            total -= p * math.log(math.exp(float(strong[i, j])) / zs)
    return total / strong.shape[0]


def test_distribution_matching_against_loop_and_direction():
    torch.manual_seed(0)
    weak = torch.randn(5, 7, requires_grad=True)
    strong = torch.randn(5, 7, requires_grad=True)
    loss = distribution_matching(strong, weak)
    assert abs(loss.item() - _dm_loop(strong.detach(), weak.detach())) < 1e-5
    loss.backward()
    assert weak.grad is None  # the weak branch is a fixed target
    # gradient w.r.t. strong logits: (softmax(strong) - softmax(weak)) / N
    ref = (strong.softmax(1) - weak.softmax(1)).detach() / 5
    torch.testing.assert_close(strong.grad, ref)


def test_hierarchical_consistency_adjacent_pairs_paper_weights():
    torch.manual_seed(1)
    b = [torch.randn(4, 6) for _ in range(3)]
    got = hierarchical_consistency(b)  # default 1/(B-1) = 0.5 each, as HiCLR
    ref = 0.5 * _dm_loop(b[1], b[0]) + 0.5 * _dm_loop(b[2], b[1])
    assert abs(float(got) - ref) < 1e-5
    got = hierarchical_consistency(b, weights=(1.0, 0.25))
    assert abs(float(got) - (_dm_loop(b[1], b[0]) + 0.25 * _dm_loop(b[2], b[1]))) < 1e-5


def test_moco_logits_by_hand():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.6, 0.8]])
    queue = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    torch.testing.assert_close(moco_logits(q, k, queue, 0.5), torch.tensor([[1.2, 0.0, -2.0]]))


def _model(branches, momentum=0.99, queue=64):
    torch.manual_seed(0)
    lay = LAYOUTS["ntu25"]
    enc = STGCN(spatial_adjacency(lay), hidden=4, out_dim=16, depth="tiny")
    return HiCLR(enc, GrowingAugment(lay.flip), proj_dim=8, queue_size=queue,
                 momentum=momentum, branches=branches)


def test_step_outputs_queue_and_momentum():
    m = _model(3)
    x = torch.randn(8, 3, 12, 25, 1)
    before = m.queue.features.clone()
    out = m((x,))
    assert set(out) == {"loss", "nce", "dm_0_1", "dm_1_2"}
    expected = out["nce"] + 0.5 * (out["dm_0_1"] + out["dm_1_2"])
    torch.testing.assert_close(out["loss"].detach(), expected)
    out["loss"].backward()
    assert m.mask_token.grad is not None  # the joint-mask token is learned
    assert all(p.grad is None for p in m.key.parameters())
    assert not torch.equal(m.queue.features, before)  # the keys were enqueued
    torch.testing.assert_close(m.queue.features[:-8], before[8:])
    base = _model(1)
    out = base((x,))
    assert set(out) == {"loss", "nce"} and not hasattr(base, "mask_token")


@pytest.mark.parametrize("branches", [1, 3])
def test_short_training_lowers_the_loss(branches):
    """The same augmentations and queue every step (fixed seed, queue restored): the
    objective is a fixed function of the weights, and SGD lowers it."""
    m = _model(branches, momentum=0.0, queue=32)
    x = torch.randn(16, 3, 12, 25, 1)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(12):
        queue = m.queue.queue.clone()
        torch.manual_seed(123)
        out = m((x,))
        m.queue.queue.copy_(queue)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses

"""BaCon / GCD maths against hand cases and loop transcriptions."""

import math

import numpy as np
import pytest
import torch

from medcl.contrastive.gcd import (
    cluster_accuracy,
    entropy_regulariser,
    estimate_distribution,
    logit_adjustment,
    sampling_rates,
    self_balanced_mask,
    self_distillation,
    semi_supervised_kmeans,
    soft_supcon,
    soft_supcon_mask,
    split_accuracy,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_hungarian_hand_cases():
    # a pure relabelling is perfect
    assert cluster_accuracy([0, 0, 1, 1, 2], [2, 2, 0, 0, 1]) == 1.0
    # 6 images; clusters {a: 0,0,1} {b: 1,1,0}: best map a->0, b->1 gives 4/6
    assert cluster_accuracy([0, 0, 1, 1, 1, 0], [5, 5, 5, 7, 7, 7]) == pytest.approx(4 / 6)
    # more clusters than classes: the extra cluster maps to nothing
    assert cluster_accuracy([0, 0, 1, 1], [0, 1, 2, 2]) == pytest.approx(3 / 4)


def test_split_accuracy_uses_one_map():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    p = np.array([1, 1, 1, 0, 0, 0, 2, 2])
    old = y < 2  # classes 0, 1 known; class 2 novel
    # global map: 1->0 (3 hits), 0->1 (2 hits, vs 1 for class 2), 2->2 (2 hits): 7/8
    acc = split_accuracy(y, p, old)
    assert acc.all == pytest.approx(7 / 8)
    assert acc.old == pytest.approx(5 / 5)
    assert acc.new == pytest.approx(2 / 3)
    assert math.isnan(split_accuracy(y[:5], p[:5], old[:5]).new)


def _soft_supcon_loop(z, soft, tau, n_views):
    """The authors' SemiConLoss, transcribed as loops over anchors and samples."""
    n = soft.shape[0]
    total, count = 0.0, 0
    for a in range(n_views * n):
        ia = a % n
        den = sum(math.exp(float(z[a] @ z[j]) / tau) for j in range(n_views * n) if j != a)
        num, wsum = 0.0, 0.0
        for p in range(n_views * n):
            if p == a:
                continue
            ip = p % n
            w = 1.0 if ip == ia else float(soft[ia] @ soft[ip])
            num += w * (float(z[a] @ z[p]) / tau - math.log(den))
            wsum += w
        if wsum > 0:
            total += -num / wsum
            count += 1
    return total / count


@pytest.mark.parametrize("fast", [True, False])
def test_soft_supcon_matches_loop(fast):
    g = torch.Generator().manual_seed(0)
    n, k, d = 5, 3, 4
    z = torch.nn.functional.normalize(torch.randn(2 * n, d, generator=g, dtype=torch.float64),
                                      dim=1)
    soft = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64) * 2, dim=1)
    soft[0] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # a labelled image: one-hot
    soft[1] = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)  # M_01 = 0: a true negative
    want = _soft_supcon_loop(z, soft, 0.5, 2)
    got = soft_supcon(z, soft, temperature=0.5, fast=fast)
    assert float(got) == pytest.approx(want, rel=1e-9)


def test_soft_supcon_gradient_fast_equals_plain():
    g = torch.Generator().manual_seed(1)
    z0 = torch.nn.functional.normalize(torch.randn(8, 5, generator=g, dtype=torch.float64), dim=1)
    soft = torch.softmax(torch.randn(4, 3, generator=g, dtype=torch.float64), dim=1)
    grads = []
    for fast in (True, False):
        z = z0.clone().requires_grad_(True)
        soft_supcon(z, soft, temperature=0.2, fast=fast).backward()
        grads.append(z.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_soft_mask_one_hot_is_supcon_mask():
    soft = torch.eye(3)[[0, 1, 0]]
    m = soft_supcon_mask(soft)
    want = torch.tensor([[0, 0, 1, 1, 0, 1], [0, 0, 0, 0, 1, 0], [1, 0, 0, 1, 0, 1],
                         [1, 0, 1, 0, 0, 1], [0, 1, 0, 0, 0, 0], [1, 0, 1, 1, 0, 0]],
                        dtype=torch.float32)
    torch.testing.assert_close(m, want)


def test_estimate_distribution_hand_case():
    # 4 classes, 2 known; labelled: class 0 (3 images) in cluster 2, class 1 (1 image) in 0
    clusters = np.array([2, 2, 2, 0] + [2] * 5 + [0] * 3 + [1] * 4 + [3] * 2)
    labels = np.array([0, 0, 0, 1] + [-1] * 14)
    est = estimate_distribution(clusters, labels, n_known=2, n_classes=4)
    # cluster sizes: 0 -> 4, 1 -> 4, 2 -> 8, 3 -> 2; known by rank: class 0 (most labels) gets
    # 8, class 1 gets 4; novel slots get the rest in descending order
    np.testing.assert_array_equal(est, [8, 4, 4, 2])
    est = estimate_distribution(clusters, labels, 2, 4, novel_rank=np.array([1.0, 5.0]))
    np.testing.assert_array_equal(est, [8, 4, 2, 4])


def test_logit_adjustment_and_rates():
    counts = torch.tensor([100.0, 10.0, 1.0])
    pi = counts / counts.sum()
    torch.testing.assert_close(logit_adjustment(counts, 0.5), 0.5 * torch.log(pi), atol=1e-6,
                               rtol=1e-6)
    torch.testing.assert_close(sampling_rates(counts, 0.5), torch.tensor([0.1, 0.1**0.5, 1.0]))


def test_self_balanced_mask_keeps_most_confident():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.8, 0.2], [0.3, 0.7]])
    assert self_balanced_mask(probs, torch.tensor([1.0, 1.0])).all()
    assert not self_balanced_mask(probs, torch.tensor([0.0, 0.0])).any()
    keep = self_balanced_mask(probs, torch.tensor([0.0, 1.0]))
    assert keep.tolist() == [False, False, False, True]
    # rate 0.5 over many draws keeps about half of class 0, always the most confident first
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(400, 2, generator=g), 1)
    probs[:, 0] += 1
    kept = [self_balanced_mask(probs, torch.tensor([0.5, 0.5]), g) for _ in range(20)]
    share = torch.stack(kept).float().mean()
    assert 0.4 < float(share) < 0.6
    conf = probs.max(1).values
    k = kept[0]
    assert conf[k].min() >= conf[~k].max()


def test_entropy_regulariser_zero_when_balanced():
    logits = torch.zeros(6, 4)
    assert float(entropy_regulariser(logits, torch.ones(4))) == pytest.approx(0.0, abs=1e-6)
    peaked = torch.tensor([[10.0, 0, 0, 0]]).repeat(6, 1)
    assert float(entropy_regulariser(peaked, torch.ones(4))) > 1.0


def test_self_distillation_hand_case():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # view 0 and view 1 of one image
    q0 = torch.softmax(logits[0] / 0.05, 0)
    q1 = torch.softmax(logits[1] / 0.05, 0)
    l0 = torch.log_softmax(logits[0] / 0.1, 0)
    l1 = torch.log_softmax(logits[1] / 0.1, 0)
    want = 0.5 * (-(q0 * l1).sum() - (q1 * l0).sum())
    torch.testing.assert_close(self_distillation(logits, 0.05), want)


def test_semi_supervised_kmeans_blobs():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0], [5, 0], [0, 5], [5, 5]])
    x = np.concatenate([c + 0.3 * rng.standard_normal((20, 2)) for c in centres])
    y = np.repeat(np.arange(4), 20)
    labels = np.where((y < 2) & (np.arange(80) % 2 == 0), y, -1)
    pred = semi_supervised_kmeans(x, labels, 4, seed=0)
    assert (pred[labels >= 0] == labels[labels >= 0]).all()
    assert (pred[y == 0] == 0).all() and (pred[y == 1] == 1).all()
    assert cluster_accuracy(y, pred) == 1.0

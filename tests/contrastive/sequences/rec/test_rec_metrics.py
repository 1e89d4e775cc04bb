"""Full-ranking HR@K / NDCG@K on hand-computed cases."""

import math

import pytest
import torch

from medcl.contrastive.sequences.rec.metrics import hit_ndcg, target_ranks

pytestmark = pytest.mark.usefixtures("one_thread")


def test_hand_case():
    # 3 users, 6 items. User 0: target scores highest -> rank 0.
    # User 1: two items above the target -> rank 2. User 2: five above -> rank 5.
    scores = torch.tensor([[0.9, 0.1, 0.2, 0.3, 0.0, 0.5],
                           [0.8, 0.7, 0.6, 0.1, 0.0, 0.2],
                           [0.1, 0.9, 0.8, 0.7, 0.6, 0.5]])
    targets = torch.tensor([0, 2, 0])
    ranks = target_ranks(scores, targets)
    assert ranks.tolist() == [0, 2, 5]
    m = hit_ndcg(ranks, ks=(1, 3, 5))
    assert m["HR@1"] == pytest.approx(1 / 3)
    assert m["HR@3"] == pytest.approx(2 / 3)
    assert m["HR@5"] == pytest.approx(2 / 3)  # rank 5 is the sixth place
    assert m["NDCG@1"] == pytest.approx(1 / 3)
    assert m["NDCG@3"] == pytest.approx((1 + 1 / math.log2(4)) / 3)  # 1/log2(2) + 1/log2(4)
    assert m["NDCG@5"] == pytest.approx((1 + 0.5) / 3)


def test_ties_count_against_the_target_and_exclusion():
    scores = torch.zeros(1, 4)
    assert target_ranks(scores, torch.tensor([2])).tolist() == [3]
    exclude = torch.tensor([[True, False, True, False]])  # the target itself is never excluded
    assert target_ranks(scores, torch.tensor([2]), exclude).tolist() == [2]


def test_matches_a_loop_over_sorted_items():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(20, 50, generator=g)
    targets = torch.randint(0, 50, (20,), generator=g)
    ranks = target_ranks(scores, targets)
    for i in range(20):
        order = sorted(range(50), key=lambda j: -float(scores[i, j]))
        assert order.index(int(targets[i])) == int(ranks[i])

"""VSE++ hardest-negative triplet loss against loops; DBL's boost losses on a hand case."""

import pytest
import torch

from medcl.contrastive.text_image import (
    VSEModel,
    boost_abs_loss,
    boost_rel_loss,
    triplet_hardest_loss,
)

pytestmark = pytest.mark.usefixtures("one_thread")

S = torch.tensor([[0.5, 0.3], [0.1, 0.6]], dtype=torch.float64)
A = torch.tensor([[0.4, 0.35], [0.2, 0.55]], dtype=torch.float64)


def test_boost_rel_hand_case():
    # rows (image i, hardest caption j): [0.2 + (a_ii - a_ij) - (s_ii - s_ij)]_+
    #   i=0: 0.2 + 0.05 - 0.2 = 0.05;  i=1: 0.2 + 0.35 - 0.5 = 0.05
    # columns (caption j, hardest image i): [0.2 + (a_jj - a_ij) - (s_jj - s_ij)]_+
    #   j=0: 0.2 + 0.2 - 0.4 = 0;      j=1: 0.2 + 0.2 - 0.3 = 0.1
    assert boost_rel_loss(S, A, margin=0.2).item() == pytest.approx(0.2, abs=1e-12)


def test_boost_abs_hand_case_and_anchor_detached():
    # positives: 2 * ([0.1 + 0.4 - 0.5]_+ + [0.1 + 0.55 - 0.6]_+) = 2 * 0.05
    # negatives: [0.1 + s_01 - a_01]_+ = 0.05, [0.1 + s_10 - a_10]_+ = 0; hardest per row
    # (0.05, 0) and per column (0, 0.05): 0.1
    anchor = A.clone().requires_grad_(True)
    scores = S.clone().requires_grad_(True)
    loss = boost_abs_loss(scores, anchor, margin=0.2)
    assert loss.item() == pytest.approx(0.2, abs=1e-12)
    loss.backward()
    assert anchor.grad is None and scores.grad.abs().sum() > 0


def _triplet_loop(s, margin, same=None):
    n = len(s)
    total = 0.0
    for i in range(n):
        neg = [j for j in range(n) if j != i and not (same and same[i][j])]
        total += max([0.0] + [margin + s[i][j] - s[i][i] for j in neg])   # image i
        total += max([0.0] + [margin + s[j][i] - s[i][i] for j in neg])   # caption i
    return total


def test_triplet_hardest_matches_loops():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(5, 5, generator=g, dtype=torch.float64)
    assert triplet_hardest_loss(s, 0.2).item() == pytest.approx(_triplet_loop(s.tolist(), 0.2))
    same = torch.zeros(5, 5, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True  # captions 0 and 1 describe one image
    got = triplet_hardest_loss(s, 0.2, same=same).item()
    assert got == pytest.approx(_triplet_loop(s.tolist(), 0.2, same.tolist()))


def test_boost_zero_when_target_beats_anchor_by_margin():
    a = torch.tensor([[0.5, 0.4], [0.4, 0.5]])
    s = torch.tensor([[0.9, 0.0], [0.0, 0.9]])
    assert boost_rel_loss(s, a).item() == 0.0 and boost_abs_loss(s, a).item() == 0.0


def test_vse_model_scores_shape():
    model = VSEModel(vocab_size=20, dim=16, width=8)
    ids = torch.randint(2, 20, (3, 5))
    scores = model.scores(torch.randn(4, 3, 32, 32), ids, torch.tensor([5, 2, 1]))
    assert scores.shape == (4, 3) and scores.abs().max() <= 1.0 + 1e-6

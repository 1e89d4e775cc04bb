"""DAMSM word/sentence terms and the two-branch label SupCon against loop transcriptions of
the papers' equations (AttnGAN eqs. 7-13; Khosla et al. eq. 2 over both branches)."""

import math

import pytest
import torch

from medcl.contrastive.text_image import (
    damsm_sentence_loss,
    damsm_word_loss,
    pretrain_terms,
    two_branch_supcon,
    word_region_scores,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _cos(a, b):
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _r_loop(e, n, v, g1, g2):
    """R(Q, D) for one description e (D, T) of n words and one image v (D, R), by loops."""
    d, r = v.shape
    s = [[sum(e[k, i] * v[k, j] for k in range(d)) for j in range(r)] for i in range(n)]
    s_bar = [[math.exp(s[i][j]) / sum(math.exp(s[k][j]) for k in range(n)) for j in range(r)]
             for i in range(n)]
    total = 0.0
    for i in range(n):
        den = sum(math.exp(g1 * s_bar[i][k]) for k in range(r))
        alpha = [math.exp(g1 * s_bar[i][j]) / den for j in range(r)]
        c = [sum(alpha[j] * v[k, j] for j in range(r)) for k in range(d)]
        total += math.exp(g2 * _cos(c, [e[k, i] for k in range(d)]))
    return math.log(total) / g2


def _ce_loop(score, g3, labels):
    """L1 + L2 (eqs. 11-13) by loops, means over the batch; same-class others left out."""
    b = len(score)

    def keep(i, j):
        return i == j or labels is None or labels[i] != labels[j]

    l1 = -sum(g3 * score[i][i] - math.log(sum(math.exp(g3 * score[j][i]) for j in range(b)
                                                  if keep(i, j))) for i in range(b)) / b
    l2 = -sum(g3 * score[i][i] - math.log(sum(math.exp(g3 * score[i][j]) for j in range(b)
                                                  if keep(i, j))) for i in range(b)) / b
    return l1 + l2


@pytest.mark.parametrize("labels", [None, [0, 1, 0, 2]])
def test_word_loss_matches_loops(labels):
    g = torch.Generator().manual_seed(0)
    b, d, t, r = 4, 5, 6, 7
    words = torch.randn(b, d, t, generator=g, dtype=torch.float64)
    regions = torch.randn(b, d, r, generator=g, dtype=torch.float64)
    lengths = torch.tensor([6, 3, 1, 4])
    words[1, :, 3:] = 99.0  # padding must be ignored
    got_r = word_region_scores(words, lengths, regions, 4.0, 5.0)
    want_r = [[_r_loop(words[i], int(lengths[i]), regions[j], 4.0, 5.0) for j in range(b)]
              for i in range(b)]
    assert torch.allclose(got_r, torch.tensor(want_r, dtype=torch.float64), atol=1e-10)
    lab = None if labels is None else torch.tensor(labels)
    got = damsm_word_loss(words, lengths, regions, lab, 4.0, 5.0, 10.0)
    assert got.item() == pytest.approx(_ce_loop(want_r, 10.0, labels), rel=1e-9)


def test_sentence_loss_matches_loops_and_has_gradients():
    g = torch.Generator().manual_seed(1)
    code = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    sent = torch.randn(5, 8, generator=g, dtype=torch.float64, requires_grad=True)
    labels = [3, 3, 1, 0, 1]
    score = [[_cos(sent[i].tolist(), code[j].tolist()) for j in range(5)] for i in range(5)]
    got = damsm_sentence_loss(code, sent, torch.tensor(labels), gamma3=10.0)
    assert got.item() == pytest.approx(_ce_loop(score, 10.0, labels), rel=1e-9)
    got.backward()
    assert torch.isfinite(code.grad).all() and code.grad.abs().sum() > 0


def _supcon_loop(z, labels, tau):
    """Khosla et al. eq. 2 (L_out), mean over anchors with a positive, by loops."""
    n = len(z)
    zn = [[x / math.sqrt(sum(y * y for y in row)) for x in row] for row in z]
    dot = [[sum(a * b for a, b in zip(zn[i], zn[j], strict=True)) / tau for j in range(n)]
           for i in range(n)]
    losses = []
    for i in range(n):
        pos = [p for p in range(n) if p != i and labels[p] == labels[i]]
        if not pos:
            continue
        den = math.log(sum(math.exp(dot[i][a]) for a in range(n) if a != i))
        losses.append(-sum(dot[i][p] - den for p in pos) / len(pos))
    return sum(losses) / len(losses)


def test_two_branch_supcon_matches_loops():
    g = torch.Generator().manual_seed(2)
    a, b, real = (torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(3))
    labels = [0, 1, 0, 2]
    got = two_branch_supcon(a, b, torch.tensor(labels), temperature=0.5)
    z = torch.cat([a, b]).tolist()
    assert got.item() == pytest.approx(_supcon_loop(z, labels * 2, 0.5), rel=1e-9)
    got3 = two_branch_supcon(a, b, torch.tensor(labels), temperature=0.5, extra=real)
    z3 = torch.cat([a, b, real]).tolist()
    assert got3.item() == pytest.approx(_supcon_loop(z3, labels * 3, 0.5), rel=1e-9)


def test_pretrain_terms_sum():
    g = torch.Generator().manual_seed(3)
    b, d, t, r = 4, 6, 5, 9
    branches = [(torch.randn(b, d, t, generator=g), torch.tensor([5, 2, 3, 4]),
                 torch.randn(b, d, generator=g)) for _ in range(2)]
    regions, code = torch.randn(b, d, r, generator=g), torch.randn(b, d, generator=g)
    labels = torch.tensor([0, 1, 1, 2])
    terms = pretrain_terms(branches, regions, code, labels, supcon_weight=0.7)
    word = sum(damsm_word_loss(w, n, regions, labels) for w, n, _ in branches)
    sent = sum(damsm_sentence_loss(code, s, labels) for *_, s in branches)
    sc = two_branch_supcon(branches[0][2], branches[1][2], labels, 0.5)
    assert torch.allclose(terms["loss"], word + sent + 0.7 * sc)
    off = pretrain_terms(branches, regions, code, labels, supcon_weight=0.0)
    assert torch.allclose(off["loss"], word + sent)

"""POT's bounds against brute-force enumeration of every allowed edge-drop set of small graphs:
the bound must hold for each one; with no budget the bounds are the exact output."""

import itertools

import pytest
import torch

from medcl.contrastive.graph import GCN
from medcl.contrastive.graph.pot import (
    adjacency_bounds,
    compactness,
    compactness_lower_bound,
    compactness_target,
    drop_budget,
    gcn_interval_bounds,
    pot_regulariser,
)

pytestmark = pytest.mark.usefixtures("one_thread")

UNDIRECTED = [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (3, 5), (4, 5), (1, 4)]


def _directed(pairs):
    if not pairs:
        return torch.zeros(2, 0, dtype=torch.long)
    a = torch.tensor(pairs).T
    return torch.cat([a, a.flip(0)], 1)


def _drop_sets(pairs, budget):
    """Every set of undirected edges whose removal costs each node at most its budget."""
    for r in range(len(pairs) + 1):
        for drop in itertools.combinations(range(len(pairs)), r):
            lost = torch.zeros(len(budget), dtype=torch.long)
            for e in drop:
                lost[pairs[e][0]] += 1
                lost[pairs[e][1]] += 1
            if (lost <= budget).all():
                yield [pairs[e] for e in range(len(pairs)) if e not in drop]


def test_budget_follows_the_authors_rule():
    ei = _directed(UNDIRECTED)
    # degrees 2, 3, 3, 3, 3, 2 -> min(max(deg + 1 - 2, 0), round(p deg))
    assert drop_budget(ei, 6, 0.5).tolist() == [1, 2, 2, 2, 2, 1]
    assert drop_budget(ei, 6, 1.0).tolist() == [1, 2, 2, 2, 2, 1]
    assert drop_budget(ei, 6, 0.0).tolist() == [0] * 6


@pytest.mark.parametrize("seed,activation,p", [(0, "relu", 0.5), (1, "relu", 0.34),
                                               (2, "prelu", 0.5), (3, "relu", 1.0)])
def test_bounds_hold_for_every_enumerated_drop_set(seed, activation, p):
    torch.manual_seed(seed)
    n = 6
    x = torch.randn(n, 4)
    enc = GCN(4, 5, 3, activation=activation)
    with torch.no_grad():
        for conv in enc.convs:
            conv.bias.normal_()
        if enc.prelu is not None:
            for pr in enc.prelu:
                pr.weight.uniform_(0.05, 0.5)
    ei = _directed(UNDIRECTED)
    budget = drop_budget(ei, n, p)
    lower, upper = gcn_interval_bounds(enc, x, ei, budget)
    w = compactness_target(torch.randn(n, 3))
    bound = compactness_lower_bound(lower, upper, w)
    edges_lo, le, ue, ls, us = adjacency_bounds(ei, n, budget)
    count = 0
    with torch.no_grad():
        for kept in _drop_sets(UNDIRECTED, budget):
            kept_ei = _directed(kept)
            h = enc(x, kept_ei)
            assert (h >= lower - 1e-5).all() and (h <= upper + 1e-5).all()
            assert (compactness(h, w) >= bound - 1e-5).all()
            # the adjacency entries themselves lie in their intervals
            deg = torch.bincount(kept_ei[1], minlength=n).float() + 1
            assert ((1 / deg >= ls - 1e-7) & (1 / deg <= us + 1e-7)).all()
            present = {tuple(e) for e in kept_ei.T.tolist()}
            for e, (s, d) in enumerate(edges_lo.T.tolist()):
                val = float((deg[s] * deg[d]).rsqrt()) if (s, d) in present else 0.0
                assert le[e] - 1e-7 <= val <= ue[e] + 1e-7
            count += 1
    assert count > 10  # the budget allows many drop sets


def test_no_budget_gives_the_exact_output():
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    enc = GCN(4, 5, 3)
    ei = _directed(UNDIRECTED)
    lower, upper = gcn_interval_bounds(enc, x, ei, torch.zeros(6, dtype=torch.long))
    with torch.no_grad():
        h = enc(x, ei)
    torch.testing.assert_close(lower, h)
    torch.testing.assert_close(upper, h)


def test_regulariser_trains_the_encoder():
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    enc = GCN(4, 5, 3)
    ei = _directed(UNDIRECTED)
    z = torch.randn(6, 3)
    loss = pot_regulariser(enc, x, ei, z, 0.5)
    loss.backward()
    assert loss.item() > 0 and enc.convs[0].lin.weight.grad.abs().sum() > 0
    opt = torch.optim.Adam(enc.parameters(), lr=0.05)
    first = loss.item()
    for _ in range(40):
        opt.zero_grad()
        loss = pot_regulariser(enc, x, ei, z, 0.5)
        loss.backward()
        opt.step()
    assert loss.item() < first

"""MEOW / AdaMEOW maths against loop transcriptions; meta-path validation and adjacency."""

import math

import pytest
import torch

from medcl.contrastive.graph.hetero import (
    MEOWEncoder,
    PairWeights,
    adameow_loss,
    disagreement_weights,
    kmeans,
    meow_info_nce,
    metapath_edges,
    parse_metapaths,
    proto_nce,
)

pytestmark = pytest.mark.usefixtures("one_thread")

NODES = ["paper", "author", "subject"]
EDGES = [("paper", "to", "author"), ("author", "to", "paper"), ("paper", "to", "subject"),
         ("subject", "to", "paper")]


def test_parse_metapaths_validates_against_the_schema():
    paths = parse_metapaths("paper-author-paper, paper-subject-paper", NODES, EDGES)
    assert [p.name for p in paths] == ["paper-author-paper", "paper-subject-paper"]
    assert paths[0].edge_types == (EDGES[0], EDGES[1])
    with pytest.raises(ValueError, match="unknown node type.*venue"):
        parse_metapaths("paper-venue-paper", NODES, EDGES)
    with pytest.raises(ValueError, match="no edge type from 'author' to 'subject'"):
        parse_metapaths("paper-author-subject-paper", NODES, EDGES)
    with pytest.raises(ValueError, match="start and end"):
        parse_metapaths("paper-author", NODES, EDGES)


def test_metapath_edges_are_reachability():
    pa = torch.tensor([[0, 1, 2], [0, 0, 1]])  # papers 0, 1 share author 0; paper 2 author 1
    ei = {EDGES[0]: pa, EDGES[1]: pa.flip(0)}
    path = parse_metapaths("paper-author-paper", NODES, EDGES)[0]
    got = metapath_edges(ei, {"paper": 3, "author": 2}, path)
    assert sorted(map(tuple, got.T.tolist())) == [(0, 1), (1, 0)]


def test_disagreement_weights_and_meow_loss_match_loops():
    g = torch.Generator().manual_seed(0)
    n, tau = 6, 0.4
    labs = [torch.tensor([0, 0, 1, 1, 2, 2]), torch.tensor([0, 1, 1, 0, 0, 1])]
    w = disagreement_weights(labs)
    for i in range(n):
        for j in range(n):
            want = 0 if i == j else 2 - sum(int(lab[i] == lab[j]) for lab in labs)
            assert w[i, j] == want
    zc = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    zf = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=1)
    total = 0.0
    for i in range(n):
        num = math.exp(float(zc[i] @ zf[i]) / tau)
        den = sum(float(w[i, j]) * math.exp(float(zc[i] @ zf[j]) / tau) for j in range(n))
        total += -math.log(num / den)
    assert meow_info_nce(zc, zf, w, tau).item() == pytest.approx(total / n, rel=1e-5)


def test_adameow_loss_matches_authors_formula():
    g = torch.Generator().manual_seed(1)
    n = 5
    zf, zc = torch.randn(n, 4, generator=g), torch.randn(n, 4, generator=g)
    mlp = PairWeights(4)
    w = mlp(zf, zc)
    for i in range(n):  # w_ij = sigma(MLP(zf_i + zc_j))
        for j in range(n):
            ref = torch.sigmoid(mlp.fc2(torch.tanh(mlp.fc1(zf[i] + zc[j]))))
            assert w[i, j].item() == pytest.approx(ref.item(), rel=1e-5)
    dots = torch.exp(zf @ zc.T / 0.7)
    want = (-torch.log(dots.diag() / (dots * w).sum(1))).mean()
    got = adameow_loss(zf, zc, w, 0.7)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got.backward()
    assert mlp.fc1.weight.grad is not None


def test_kmeans_and_proto_nce():
    g = torch.Generator().manual_seed(2)
    z = torch.cat([torch.randn(20, 2, generator=g) * 0.1 + 3, torch.randn(20, 2, generator=g) * 0.1
                   - 3])
    labels, cent = kmeans(z, 2, g)
    assert len(set(labels[:20].tolist())) == 1 and labels[0] != labels[20]
    zn = torch.nn.functional.normalize(z, dim=1)
    loss = proto_nce(zn, [(labels, cent)])
    assert torch.isfinite(loss) and loss.item() < 0.1  # well-separated clusters: near zero


def test_meow_encoder_views_shapes():
    torch.manual_seed(0)
    x = {"paper": torch.randn(8, 5), "author": torch.randn(4, 3)}
    path = parse_metapaths("paper-author-paper", NODES, EDGES)
    pa = torch.stack([torch.arange(8), torch.arange(8) % 4])
    mp = metapath_edges({EDGES[0]: pa, EDGES[1]: pa.flip(0)}, {"paper": 8, "author": 4}, path[0])
    enc = MEOWEncoder({"paper": 5, "author": 3}, path, hidden=8, embed=6)
    zc, zf, emb = enc.views(x, [mp], [pa], mask_p=0.2, drop_p=0.2)
    assert zc.shape == zf.shape == emb.shape == (8, 6)
    torch.testing.assert_close(zc.norm(dim=1), torch.ones(8))

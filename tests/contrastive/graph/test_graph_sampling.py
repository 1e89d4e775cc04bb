"""The plain-torch neighbour sampler: seeds first, only real edges, fan-out respected."""

import pytest
import torch

from medcl.contrastive.graph.sampling import CSR, sample_subgraph

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sampled_subgraph_is_part_of_the_graph():
    g = torch.Generator().manual_seed(0)
    n = 200
    ei = torch.randint(0, n, (2, 3000), generator=g)
    ei = ei[:, ei[0] != ei[1]]
    real = set(map(tuple, ei.T.tolist()))
    seeds = torch.tensor([5, 17, 99])
    nodes, sub = sample_subgraph(CSR.from_edge_index(ei, n), seeds, [4, 3], g)
    assert nodes[:3].tolist() == [5, 17, 99] and len(set(nodes.tolist())) == len(nodes)
    glob = nodes[sub]
    assert all((a, b) in real for a, b in glob.T.tolist())
    into_seeds = torch.bincount(sub[1], minlength=len(nodes))[:3]
    assert (into_seeds <= 4).all() and (into_seeds >= 1).all()


def test_isolated_seed_gives_no_edges():
    ei = torch.tensor([[0, 1], [1, 0]])
    nodes, sub = sample_subgraph(CSR.from_edge_index(ei, 3), torch.tensor([2]), [5, 5])
    assert nodes.tolist() == [2] and sub.shape == (2, 0)

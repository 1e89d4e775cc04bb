"""Sampled neighbourhoods for mini-batch training on large graphs (GraphSAGE's sampler,
Hamilton et al. 2017, Alg. 2).

PyG's :class:`~torch_geometric.loader.NeighborLoader` needs the compiled ``pyg-lib`` or
``torch-sparse`` extensions, which medcl does not require (no custom CUDA/C++ extensions), so
this is the same sampler in plain torch: for each hop, up to ``fanout`` in-neighbours of every
frontier node, drawn with replacement and deduplicated, from a CSR index built once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CSR:
    """In-neighbours of every node: ``src[ptr[i]:ptr[i + 1]]`` send to ``i``."""

    ptr: Tensor
    src: Tensor
    num_nodes: int

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int) -> CSR:
        order = torch.argsort(edge_index[1], stable=True)
        deg = torch.bincount(edge_index[1], minlength=num_nodes)
        ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
        ptr[1:] = torch.cumsum(deg, 0)
        return cls(ptr, edge_index[0][order], num_nodes)


def sample_subgraph(csr: CSR, seeds: Tensor, fanouts: list[int],
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The sampled computation graph of ``seeds``.

    Returns
    -------
    nodes : Tensor, shape (M,)
        Global ids, the seeds first (in order), then the sampled neighbours.
    edge_index : Tensor, shape (2, E)
        Sampled edges in local ids (``nodes[edge_index]`` are global).
    """
    local = torch.full((csr.num_nodes,), -1, dtype=torch.long)
    nodes = seeds.clone()
    local[nodes] = torch.arange(len(nodes))
    frontier = nodes
    srcs, dsts = [], []
    for k in fanouts:
        deg = csr.ptr[frontier + 1] - csr.ptr[frontier]
        has = deg > 0
        f, d = frontier[has], deg[has]
        if len(f) == 0:
            break
        draw = (torch.rand(len(f), k, generator=generator) * d[:, None]).long()
        nbr = csr.src[csr.ptr[f][:, None] + draw]  # (F, k)
        pair = torch.unique(torch.stack([nbr.flatten(), f.repeat_interleave(k)]), dim=1)
        new = torch.unique(pair[0][local[pair[0]] < 0])
        local[new] = torch.arange(len(nodes), len(nodes) + len(new))
        nodes = torch.cat([nodes, new])
        srcs.append(local[pair[0]])
        dsts.append(local[pair[1]])
        frontier = new
    if not srcs:
        return nodes, torch.zeros(2, 0, dtype=torch.long)
    ei = torch.stack([torch.cat(srcs), torch.cat(dsts)])
    return nodes, torch.unique(ei, dim=1)

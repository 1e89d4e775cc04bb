"""MEOW and AdaMEOW on heterogeneous graphs (Yu et al., "Heterogeneous Graph Contrastive
Learning with Meta-path Contexts and Weighted Negative Samples", SDM 2023 (MEOW) and its TKDE
2024 extension (AdaMEOW), arXiv:2212.13847).

Two views of the target nodes (e.g. papers):

- **coarse**: the target features through a GCN on the mean of the meta-path adjacencies;
- **fine**: per meta-path ``P``, the target feature plus a linear map of the mean of its
  context neighbours (the first hop of ``P``), through the same GCN on ``P``'s adjacency, each
  also with a feature-masked / edge-dropped copy; fused by semantic attention (HAN, Wang et al.
  2019, eq. 7-9).

Both pass a shared ``tanh(Linear)`` projection and L2 normalisation. MEOW's loss is InfoNCE from
the coarse anchors to the fine samples with negatives weighted by k-means disagreement plus a
ProtoNCE term (PCL, Li et al. 2021, eq. 10); AdaMEOW learns the weights with an MLP instead.

Departures from the authors' code: one code path for any schema (the authors write one
aggregation per data set); the masked copies are drawn afresh each step (the code fixes them at
the start); meta-path adjacencies are binary reachability (the code keeps PathSim top-k
neighbours); k-means is a seeded Lloyd's algorithm in torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import info_nce, info_nce_logits
from .augment import drop_edges, mask_features
from .encoders import GCN


@dataclass(frozen=True)
class MetaPath:
    """A meta-path as node types (``paper-author-paper``) and the edge type of each hop."""

    node_types: tuple[str, ...]
    edge_types: tuple[tuple[str, str, str], ...]

    @property
    def name(self) -> str:
        return "-".join(self.node_types)


def parse_metapaths(text: str, node_types, edge_types) -> list[MetaPath]:
    """Parse ``"paper-author-paper,paper-subject-paper"`` against a schema.

    Raises
    ------
    ValueError
        A node type or a hop without an edge type in the schema, fewer than two hops, or paths
        that do not start and end at one same target type. The message names the culprit and the
        types that exist.
    """
    paths = []
    nodes = list(node_types)
    edges = list(edge_types)
    for raw in [p.strip() for p in text.split(",") if p.strip()]:
        types = tuple(t.strip() for t in raw.split("-"))
        unknown = [t for t in types if t not in nodes]
        if unknown:
            raise ValueError(f"meta-path {raw!r} names unknown node type(s) "
                             f"{', '.join(unknown)}; the graph has {', '.join(nodes)}")
        if len(types) < 3 or types[0] != types[-1]:
            raise ValueError(f"meta-path {raw!r} must start and end at the target type and "
                             "have at least two hops (e.g. paper-author-paper)")
        hops = []
        for a, b in zip(types[:-1], types[1:], strict=True):
            found = [e for e in edges if e[0] == a and e[2] == b]
            if not found:
                raise ValueError(f"meta-path {raw!r}: no edge type from {a!r} to {b!r}; the "
                                 f"graph has {', '.join('-'.join((e[0], e[2])) for e in edges)}")
            hops.append(found[0])
        paths.append(MetaPath(types, tuple(hops)))
    if not paths:
        raise ValueError("no meta-path given")
    if len({p.node_types[0] for p in paths}) > 1:
        raise ValueError("meta-paths start at different node types; give paths of one target type")
    return paths


def _csr(ei: Tensor, n_rows: int, n_cols: int):
    import numpy as np
    import scipy.sparse as sp

    e = ei.cpu().numpy()
    return sp.csr_matrix((np.ones(e.shape[1], dtype=np.float32), (e[0], e[1])),
                         shape=(n_rows, n_cols))


def metapath_edges(edge_index_dict, num_nodes: dict[str, int], path: MetaPath) -> Tensor:
    """Target-to-target ``edge_index`` (2, E) of the nodes joined by an instance of ``path``
    (binary reachability by sparse products (SciPy), self-pairs removed)."""
    first = path.edge_types[0]
    a = _csr(edge_index_dict[first], num_nodes[first[0]], num_nodes[first[2]])
    for et in path.edge_types[1:]:
        a = a @ _csr(edge_index_dict[et], num_nodes[et[0]], num_nodes[et[2]])
    rows, cols = a.nonzero()
    ei = torch.stack([torch.as_tensor(rows, dtype=torch.long),
                      torch.as_tensor(cols, dtype=torch.long)])
    return ei[:, ei[0] != ei[1]]


def context_mean(edge_index: Tensor, n_target: int, h_context: Tensor) -> Tensor:
    """Mean of each target node's context neighbours ``(n_target, H)`` (zero when none);
    ``edge_index`` runs target -> context."""
    out = h_context.new_zeros(n_target, h_context.shape[1])
    out.index_add_(0, edge_index[0], h_context[edge_index[1]])
    count = torch.bincount(edge_index[0], minlength=n_target).clamp_min(1)
    return out / count[:, None].to(out.dtype)


class SemanticAttention(nn.Module):
    """HAN's semantic attention: ``beta = softmax_P(mean_i q^T tanh(W z_i^P + b))``."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.fc = nn.Linear(dim, hidden)
        self.q = nn.Parameter(torch.randn(hidden) / math.sqrt(hidden))

    def forward(self, zs: list[Tensor]) -> Tensor:
        scores = torch.stack([(torch.tanh(self.fc(z)) @ self.q).mean() for z in zs])
        beta = torch.softmax(scores, 0)
        return sum(b * z for b, z in zip(beta, zs, strict=True))


class MEOWEncoder(nn.Module):
    """Coarse and fine views of the target nodes (see the module docstring).

    Parameters
    ----------
    feat_dims : dict of str to int
        Feature width of every node type that the meta-paths visit.
    paths : list of MetaPath
    hidden, embed : int
        Width after the per-type linear maps, and of the embeddings (64 in the paper).
    """

    def __init__(self, feat_dims: dict[str, int], paths: list[MetaPath], hidden: int = 64,
                 embed: int = 64):
        super().__init__()
        self.paths = paths
        self.target = paths[0].node_types[0]
        self.fc = nn.ModuleDict({t: nn.Linear(d, hidden) for t, d in feat_dims.items()})
        self.agg = nn.ModuleList([nn.Linear(hidden, hidden, bias=False) for _ in paths])
        self.gcn = GCN(hidden, embed, embed)
        self.att = SemanticAttention(embed)
        self.project = nn.Linear(embed, embed)

    def views(self, x_dict: dict[str, Tensor], mp_edges: list[Tensor], ctx_edges: list[Tensor],
              mask_p: float = 0.0, drop_p: float = 0.0,
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(z_coarse, z_fine, embedding)``: the two projected, normalised views (N, embed) and
        the fused fine view before projection (what ``embed`` exports)."""
        t = self.target
        n = x_dict[t].shape[0]
        h_t = F.elu(self.fc[t](x_dict[t]))
        coarse_ei = torch.cat(mp_edges, 1) if mp_edges else torch.zeros(2, 0, dtype=torch.long)
        z_c = self.gcn(h_t, coarse_ei)
        fine = []
        augment = self.training and (mask_p > 0 or drop_p > 0)
        for k, (path, ei, ctx) in enumerate(zip(self.paths, mp_edges, ctx_edges, strict=True)):
            c_type = path.node_types[1]
            nei = self.agg[k](context_mean(ctx, n, F.elu(self.fc[c_type](x_dict[c_type]))))
            fine.append(F.normalize(self.gcn(F.elu(h_t + nei), ei), dim=1))
            if augment:
                h_m = F.elu(self.fc[t](mask_features(x_dict[t], mask_p, generator)))
                fine.append(F.normalize(self.gcn(F.elu(h_m + nei),
                                                 drop_edges(ei, drop_p, generator)), dim=1))
        z_f = self.att(fine)
        proj = [F.normalize(torch.tanh(self.project(z)), dim=1) for z in (z_c, z_f)]
        return proj[0], proj[1], z_f


@torch.no_grad()
def kmeans(z: Tensor, k: int, generator: torch.Generator, iters: int = 25) -> tuple[Tensor,
                                                                                      Tensor]:
    """Lloyd's k-means on rows of ``z`` (N, D) from ``k`` distinct random rows: ``(labels (N,),
    centroids (k, D))``; an emptied cluster keeps its previous centroid."""
    n = z.shape[0]
    k = min(k, n)
    cent = z[torch.randperm(n, generator=generator)[:k]].clone()
    labels = torch.zeros(n, dtype=torch.long)
    for _ in range(iters):
        labels = torch.cdist(z, cent).argmin(1)
        sums = torch.zeros_like(cent).index_add_(0, labels, z)
        count = torch.bincount(labels, minlength=k)
        cent = torch.where(count[:, None] > 0, sums / count.clamp_min(1)[:, None], cent)
    return labels, cent


def disagreement_weights(labelings: list[Tensor]) -> Tensor:
    """MEOW's negative weights ``w_ij = K - #{runs where i and j share a cluster}`` with
    ``w_ii = 0`` (sec. 4.3), over ``K`` clusterings: (N, N)."""
    n = labelings[0].shape[0]
    w = torch.full((n, n), float(len(labelings)))
    for lab in labelings:
        w -= (lab[:, None] == lab[None, :]).float()
    w.fill_diagonal_(0.0)
    return w


def meow_info_nce(z_coarse: Tensor, z_fine: Tensor, weights: Tensor,
                  temperature: float = 0.4) -> Tensor:
    """MEOW's weighted InfoNCE (sec. 4.3, eq. 9), through the core kernel:

    .. math::

        L = -\\frac{1}{N} \\sum_i \\log \\frac{e^{z^c_i \\cdot z^f_i / \\tau}}
                {\\sum_{j} w_{ij}\\, e^{z^c_i \\cdot z^f_j / \\tau}}

    with ``w_ii = 0`` (the positive is not in the denominator).
    """
    n = z_coarse.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z_coarse.device)
    return info_nce(z_coarse, z_fine, eye, ~eye, temperature=temperature,
                    neg_weight=weights.to(z_coarse.dtype), positives_in_denominator=False)


def proto_nce(z: Tensor, clusterings: list[tuple[Tensor, Tensor]], alpha: float = 10.0) -> Tensor:
    """ProtoNCE's prototype term (PCL, Li et al. 2021, eq. 10-12), averaged over clusterings:
    ``-log exp(z_i . c_s / phi_s) / sum_j exp(z_i . c_j / phi_j)`` with each cluster's
    concentration ``phi = sum ||z - c|| / (n log(n + alpha))``; singletons get the largest phi
    and phi is scaled to mean 0.2 (PCL's code); through :func:`info_nce_logits`."""
    terms = []
    for labels, cent in clusterings:
        k = cent.shape[0]
        c = F.normalize(cent, dim=1)
        dist = (z.detach() - c[labels]).norm(dim=1)
        count = torch.bincount(labels, minlength=k).float()
        phi = torch.zeros(k).index_add_(0, labels, dist) / (count * torch.log(count + alpha))
        big = phi[count > 1].max() if (count > 1).any() else torch.tensor(1.0)
        phi = torch.where(count > 1, phi, big).clamp_min(1e-3)
        phi = 0.2 * phi / phi.mean()
        logits = z @ c.T / phi[None, :]
        terms.append(info_nce_logits(logits, F.one_hot(labels, k).bool()))
    return torch.stack(terms).mean()


class PairWeights(nn.Module):
    """AdaMEOW's learnt negative weights ``w_ij = sigma(MLP(z^f_i + z^c_j))``, MLP d -> 16 -> 1
    with tanh (the TKDE paper, sec. 5)."""

    def __init__(self, dim: int, hidden: int = 16):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, 1)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        # fc1(a_i + b_j) = fc1(a)_i + W b_j: (N, N, hidden) without the (N, N, d) sum
        hidden = torch.tanh(self.fc1(a)[:, None, :] + (b @ self.fc1.weight.T)[None, :, :])
        return torch.sigmoid(self.fc2(hidden).squeeze(-1))


def adameow_loss(z_fine: Tensor, z_coarse: Tensor, weights: Tensor,
                 temperature: float = 1.0) -> Tensor:
    """AdaMEOW's loss: anchors the fine view, samples the coarse one, every ``j`` (``i``
    included) in the denominator with its learnt weight:
    ``-mean_i log e^{s_ii} / sum_j w_ij e^{s_ij}``, ``s = z^f . z^c / tau``. The weights keep
    their gradient (the MLP learns through this loss), so this is plain autograd over the
    ``(N, N)`` logits rather than the kernel (whose weights are constants)."""
    s = z_fine @ z_coarse.T / temperature
    return (torch.logsumexp(s + torch.log(weights.clamp_min(1e-12)), 1) - s.diag()).mean()

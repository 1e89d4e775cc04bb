"""Pretraining, embedding and scoring of the graph methods (``medcl core graph``).

A run trains one method on one graph and writes a run folder: ``config.yaml`` (resolved),
``metrics.csv`` (per epoch), ``model.pt`` (state dict, ``weights_only``-loadable),
``scores.csv`` / ``scores.md`` (probe, NMI, ARI, modularity), ``embedding.png`` (2-D PCA of the
embeddings coloured by community), ``loss.png`` and ``report.md``.

Methods (the maths in :mod:`medcl.contrastive.graph`): ``grace``, ``gcool`` (homogeneous),
``meow``, ``adameow`` (heterogeneous, meta-paths); ``--pot`` adds POT's certified-compactness
term to ``grace`` or ``gcool``.

With ``--batch-nodes`` every step trains on a sampled 2-hop subgraph of the seed nodes
(:mod:`medcl.contrastive.graph.sampling`): GRACE's anchors are the seeds (every subgraph node
is a negative), gCooL's terms and POT's bounds are computed on the subgraph (POT's budget from
the subgraph's degrees, so its certificate is for the sampled graph, not the whole one).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medcl.io.errors import ConfigError, RunFolderError

from .graph_data import GraphSet, load_graph

HOMOGENEOUS = ("grace", "gcool")
HETEROGENEOUS = ("meow", "adameow")
METHODS = HOMOGENEOUS + HETEROGENEOUS
PAPERS = {
    "grace": "Zhu et al. 2020, Deep Graph Contrastive Representation Learning (GRACE)",
    "gcool": "Li et al. 2022, Graph Communal Contrastive Learning (gCooL), WWW",
    "meow": "Yu et al. 2023, Heterogeneous Graph Contrastive Learning with Meta-path Contexts "
            "and Weighted Negative Samples (MEOW), SDM",
    "adameow": "Yu et al. 2024, AdaMEOW (TKDE extension of MEOW)",
    "pot": "Yu et al. 2023, Provable Training for Graph Contrastive Learning (POT), NeurIPS",
}
TEMPERATURE = {"grace": 0.4, "gcool": 0.4, "meow": 0.4, "adameow": 1.0}


@dataclass
class GraphConfig:
    """One pretraining run (``medcl core graph pretrain``); defaults follow the papers where a
    small CPU run allows (GRACE: drop-edge 0.2 / 0.4, feature mask 0.3 / 0.4, tau 0.4; gCooL:
    lambda 1, stride 500, alpha rate 0.2, gamma 8e-5; POT: kappa 0.4; MEOW: tau 0.4, lambda 1,
    AdaMEOW: tau 1.0).

    ``temperature`` ``None`` takes the method's value; ``communities`` ``None`` the number of
    true communities when the graph has labels, else 8.
    """

    method: str = "grace"
    pot: bool = False
    data: str = "karate"
    features: str | None = None
    metapaths: str | None = None
    nodes: int = 400
    epochs: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-5
    hidden: int = 128
    out_dim: int = 64
    proj_dim: int = 64
    activation: str = "relu"
    temperature: float | None = None
    drop_edge: tuple[float, float] = (0.2, 0.4)
    mask_feature: tuple[float, float] = (0.3, 0.4)
    kappa: float = 0.4
    communities: int | None = None
    lam: float = 1.0
    stride: int = 500
    alpha_rate: float = 0.2
    gamma: float = 8e-5
    kmeans_runs: int = 2
    batch_nodes: int | None = None
    fanout: tuple[int, int] = (10, 10)
    chunk_size: int | None = None
    test_size: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        self.drop_edge = tuple(self.drop_edge)
        self.mask_feature = tuple(self.mask_feature)
        self.fanout = tuple(self.fanout)
        if self.method not in METHODS:
            raise ConfigError(f"--method {self.method!r} is unknown",
                              fix=f"choose one of {', '.join(METHODS)}")
        if self.pot and self.method not in HOMOGENEOUS:
            raise ConfigError(f"--pot works with grace and gcool, not {self.method}",
                              fix="drop --pot or choose --method grace/gcool")
        for flag, value, low in [("--epochs", self.epochs, 1), ("--hidden", self.hidden, 1),
                                 ("--out-dim", self.out_dim, 1), ("--nodes", self.nodes, 1)]:
            if value < low:
                raise ConfigError(f"{flag} {value} is too small", fix=f"give {flag} >= {low}")
        if self.batch_nodes is not None and self.batch_nodes < 2:
            raise ConfigError(f"--batch-nodes {self.batch_nodes} is too small",
                              fix="give --batch-nodes >= 2")
        if self.batch_nodes is not None and self.method not in HOMOGENEOUS:
            raise ConfigError("--batch-nodes is for grace and gcool",
                              fix="drop --batch-nodes for meow/adameow (full batch)")
        if self.communities is not None and self.communities < 2:
            raise ConfigError("--communities must be >= 2", fix="give e.g. --communities 4")
        if self.temperature is not None and self.temperature <= 0:
            raise ConfigError("--temperature must be > 0", fix="give e.g. --temperature 0.4")
        if not 0 < self.kappa < 1:
            raise ConfigError("--kappa must be in (0, 1)", fix="give e.g. --kappa 0.4")
        if self.lr <= 0:
            raise ConfigError("--lr must be > 0", fix="give e.g. --lr 1e-3")

    @property
    def tau(self) -> float:
        return float(self.temperature or TEMPERATURE[self.method])

    @property
    def label(self) -> str:
        return self.method + ("+pot" if self.pot else "")


class GraphModel(nn.Module):
    """Encoder + projection head (+ gCooL's centres, AdaMEOW's pair weights)."""

    def __init__(self, cfg: GraphConfig, in_dim: int, k: int, feat_dims=None, paths=None):
        super().__init__()
        from medcl.contrastive.graph import GCN, ProjectionHead
        from medcl.contrastive.graph.hetero import MEOWEncoder, PairWeights

        self.hetero = cfg.method in HETEROGENEOUS
        if self.hetero:
            self.encoder = MEOWEncoder(feat_dims, paths, hidden=cfg.hidden, embed=cfg.out_dim)
            self.pair = PairWeights(cfg.out_dim) if cfg.method == "adameow" else None
        else:
            self.encoder = GCN(in_dim, cfg.hidden, cfg.out_dim, cfg.activation)
            self.head = ProjectionHead(cfg.out_dim, cfg.proj_dim)
            self.centres = nn.Parameter(torch.randn(k, cfg.out_dim)) \
                if cfg.method == "gcool" else None


# ----------------------------------------------------------------------------- preparation


@dataclass
class Prepared:
    """A graph with what training needs: meta-path edges for heterogeneous ones."""

    graph: GraphSet
    k: int
    paths: Any = None
    x_dict: Any = None
    mp_edges: Any = None
    ctx_edges: Any = None
    feat_dims: Any = None


def prepare(cfg: GraphConfig, graph: GraphSet) -> Prepared:
    """Check the method against the graph; build meta-path adjacencies (errors exit 2)."""
    k = cfg.communities or graph.n_communities or 8
    k = max(2, min(k, graph.num_nodes - 1))
    if cfg.method in HOMOGENEOUS:
        if graph.hetero is not None:
            raise ConfigError(f"{graph.source} is heterogeneous; --method {cfg.method} needs a "
                              "homogeneous graph", fix="use --method meow or adameow")
        return Prepared(graph, k)
    if graph.hetero is None:
        raise ConfigError(f"--method {cfg.method} needs a heterogeneous graph (HeteroData)",
                          fix="give --data hetero or a HeteroData .pt")
    from medcl.contrastive.graph.hetero import metapath_edges, parse_metapaths

    from .graph_data import undirected

    text = cfg.metapaths or graph.metapaths
    if not text:
        raise ConfigError("--metapaths is needed for this graph",
                          fix='give e.g. --metapaths "paper-author-paper,paper-subject-paper"')
    data = graph.hetero
    try:
        paths = parse_metapaths(text, data.node_types, data.edge_types)
    except ValueError as exc:
        raise ConfigError(f"--metapaths: {exc}", fix="name node types and hops of the graph's "
                          "schema") from exc
    if paths[0].node_types[0] != graph.target:
        raise ConfigError(f"--metapaths start at {paths[0].node_types[0]!r}; the labelled target "
                          f"type is {graph.target!r}", fix="give meta-paths of the target type")
    sizes = {t: data[t].num_nodes for t in data.node_types}
    x_dict = {t: (data[t].x.float() if "x" in data[t] else torch.eye(sizes[t]))
              for t in data.node_types}
    ei = {et: data[et].edge_index.long() for et in data.edge_types}
    n = sizes[graph.target]
    mp = [undirected(metapath_edges(ei, sizes, p), n) for p in paths]
    if all(e.shape[1] == 0 for e in mp):
        raise ConfigError(f"the meta-paths {text} join no two {graph.target} nodes",
                          fix="choose meta-paths that connect target nodes")
    ctx = [ei[p.edge_types[0]] for p in paths]
    graph.edge_index = undirected(torch.cat(mp, 1), n)
    return Prepared(graph, k, paths, x_dict, mp, ctx,
                    {t: int(x.shape[1]) for t, x in x_dict.items()})


def build_model(cfg: GraphConfig, prep: Prepared) -> GraphModel:
    return GraphModel(cfg, int(prep.graph.x.shape[1]), prep.k, prep.feat_dims, prep.paths)


# ----------------------------------------------------------------------------- training


def _homogeneous_loss(cfg: GraphConfig, model: GraphModel, x: Tensor, ei: Tensor, epoch: int,
                      gen: torch.Generator, anchors: Tensor | None = None) -> dict[str, Tensor]:
    from medcl.contrastive.graph import (
        community_assign,
        deca_loss,
        drop_edges,
        gcool_weights,
        grace_loss,
        mask_features,
        node_cross_view_loss,
        pot_regulariser,
        resc_loss,
    )

    e1, e2 = drop_edges(ei, cfg.drop_edge[0], gen), drop_edges(ei, cfg.drop_edge[1], gen)
    x1, x2 = mask_features(x, cfg.mask_feature[0], gen), mask_features(x, cfg.mask_feature[1],
                                                                        gen)
    z1, z2 = model.encoder(x1, e1), model.encoder(x2, e2)
    h1, h2 = model.head(z1), model.head(z2)
    parts: dict[str, Tensor] = {}
    if cfg.method == "grace":
        loss = grace_loss(h1, h2, cfg.tau, cfg.chunk_size, anchor_index=anchors)
        parts["node"] = loss.detach()
    else:
        loss = node_cross_view_loss(h1, h2, cfg.tau, cfg.chunk_size)
        parts["node"] = loss.detach()
        w_deca, w_resc = gcool_weights(epoch, cfg.stride, cfg.alpha_rate)
        if w_deca + w_resc > 0:
            r1 = community_assign(h1, model.centres, cfg.tau)
            r2 = community_assign(h2, model.centres, cfg.tau)
            deca = 0.5 * (deca_loss(r1, e1, cfg.lam) + deca_loss(r2, e2, cfg.lam))
            resc = resc_loss(h1, h2, r1, r2, cfg.tau, cfg.gamma)
            loss = loss + w_deca * deca + w_resc * resc
            parts["deca"], parts["resc"] = deca.detach(), resc.detach()
    if cfg.pot:
        p = max(cfg.drop_edge)
        pot = pot_regulariser(model.encoder, x, ei, [z2, z1], p, nodes=anchors)
        parts["pot"] = pot.detach()
        loss = (1 - cfg.kappa) * loss + cfg.kappa * pot
    parts["loss"] = loss
    return parts


def _hetero_loss(cfg: GraphConfig, model: GraphModel, prep: Prepared,
                 gen: torch.Generator) -> dict[str, Tensor]:
    from medcl.contrastive.graph.hetero import (
        adameow_loss,
        disagreement_weights,
        kmeans,
        meow_info_nce,
        proto_nce,
    )

    zc, zf, _ = model.encoder.views(prep.x_dict, prep.mp_edges, prep.ctx_edges,
                                    cfg.mask_feature[0], cfg.drop_edge[0], gen)
    if cfg.method == "adameow":
        loss = adameow_loss(zf, zc, model.pair(zf, zc), cfg.tau)
        return {"loss": loss, "info": loss.detach()}
    ks = [prep.k * (r + 1) for r in range(cfg.kmeans_runs)]
    runs = [kmeans(zf.detach(), k, gen) for k in ks]
    info = meow_info_nce(zc, zf, disagreement_weights([r[0] for r in runs]), cfg.tau)
    proto = proto_nce(zc, runs)
    return {"loss": info + cfg.lam * proto, "info": info.detach(), "proto": proto.detach()}


def train(cfg: GraphConfig, prep: Prepared, *, progress: bool = True,
          budget_seconds: float | None = None) -> tuple[GraphModel, list[dict[str, float]], float]:
    """Train ``cfg.epochs`` epochs (full batch, or ``--batch-nodes`` seeds per step); return
    the model, the per-epoch log and the training seconds."""
    from medcl.contrastive.engine import seed_everything
    from medcl.contrastive.graph.sampling import CSR, sample_subgraph
    from medcl.util.clock import clock

    seed_everything(cfg.seed)
    model = build_model(cfg, prep)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = prep.graph
    csr = CSR.from_edge_index(g.edge_index, g.num_nodes) if cfg.batch_nodes else None
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        if budget_seconds is not None and epoch and time.perf_counter() - start > budget_seconds:
            break
        t0 = time.perf_counter()
        model.train()
        sums: dict[str, float] = {}
        steps = 0
        if csr is None:
            batches = [None]
        else:
            perm = torch.randperm(g.num_nodes, generator=gen)
            batches = list(perm.split(cfg.batch_nodes))
        for seeds in batches:
            if model.hetero:
                parts = _hetero_loss(cfg, model, prep, gen)
            elif seeds is None:
                parts = _homogeneous_loss(cfg, model, g.x, g.edge_index, epoch, gen)
            else:
                nodes, sub = sample_subgraph(csr, seeds, list(cfg.fanout), gen)
                parts = _homogeneous_loss(cfg, model, g.x[nodes], sub, epoch, gen,
                                          anchors=torch.arange(len(seeds)))
            opt.zero_grad()
            parts["loss"].backward()
            opt.step()
            for key, v in parts.items():
                sums[key] = sums.get(key, 0.0) + float(v.detach())
            steps += 1
        row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()},
               "seconds": round(time.perf_counter() - t0, 4)}
        history.append(row)
        if progress and (epoch == 0 or (epoch + 1) % max(1, cfg.epochs // 10) == 0
                         or epoch + 1 == cfg.epochs):
            print(f"{cfg.label} epoch {epoch + 1}/{cfg.epochs} loss={row['loss']:.4g} (elapsed "
                  f"{clock(time.perf_counter() - start)})", file=sys.stderr, flush=True)
    model.eval()
    return model, history, time.perf_counter() - start


# ----------------------------------------------------------------------------- embeddings


@torch.no_grad()
def embeddings(cfg: GraphConfig, model: GraphModel, prep: Prepared) -> tuple[np.ndarray,
                                                                               np.ndarray]:
    """``(z (N, D), communities (N,))``: encoder outputs and hard communities (gCooL's learnt
    assignment; k-means with ``k`` communities on the normalised embeddings otherwise)."""
    from medcl.contrastive.graph import community_assign
    from medcl.contrastive.graph.hetero import kmeans

    model.eval()
    g = prep.graph
    if model.hetero:
        _, _, z = model.encoder.views(prep.x_dict, prep.mp_edges, prep.ctx_edges)
    else:
        z = model.encoder(g.x, g.edge_index)
    if cfg.method == "gcool" and model.centres is not None:
        comm = community_assign(model.head(z), model.centres, cfg.tau).argmax(1)
    else:
        zn = torch.nn.functional.normalize(z, dim=1)
        comm, _ = kmeans(zn, prep.k, torch.Generator().manual_seed(cfg.seed))
    return z.numpy(), comm.numpy()


def scores(z: np.ndarray, comm: np.ndarray, graph: GraphSet, labels: np.ndarray | None,
           seed: int, test_size: float = 0.5) -> dict[str, float]:
    """Linear-probe accuracy (labels; stratified split), NMI / ARI of the communities against
    the labels (scikit-learn), modularity of the communities (NetworkX)."""
    import networkx as nx
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
    from sklearn.model_selection import train_test_split

    from medcl.contrastive.probe import linear_probe_accuracy

    out: dict[str, float] = {"communities": float(len(np.unique(comm)))}
    g = nx.Graph()
    g.add_nodes_from(range(len(comm)))
    g.add_edges_from(graph.edge_index.T.tolist())
    groups = [set(np.nonzero(comm == c)[0].tolist()) for c in np.unique(comm)]
    out["modularity"] = float(nx.community.modularity(g, groups))
    if labels is not None and len(np.unique(labels)) > 1:
        idx = np.arange(len(labels))
        counts = np.bincount(labels)
        strat = labels if counts[counts > 0].min() >= 2 else None
        tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=strat)
        out["probe_acc"] = float(linear_probe_accuracy(z[tr], labels[tr], z[te], labels[te]))
        out["nmi"] = float(normalized_mutual_info_score(labels, comm))
        out["ari"] = float(adjusted_rand_score(labels, comm))
    return out


def plot_embedding(folder: Any, z: np.ndarray, comm: np.ndarray, title: str) -> None:
    """2-D PCA of the embeddings, one colour per community (``embedding.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    zc = z - z.mean(0)
    _, _, vt = np.linalg.svd(zc, full_matrices=False)
    xy = zc @ vt[:2].T if vt.shape[0] >= 2 else np.c_[zc[:, :1], np.zeros(len(zc))]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.scatter(xy[:, 0], xy[:, 1], c=comm, cmap="tab10", s=8)
    ax.set_title(title)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    folder.save_figure("embedding", fig)
    plt.close(fig)


def score_table(row: dict[str, float]) -> Any:
    import pandas as pd

    cols = ["probe_acc", "nmi", "ari", "modularity", "communities"]
    return pd.DataFrame([{c: row.get(c, np.nan) for c in cols}])


def write_scores(folder: Any, row: dict[str, float]) -> str:
    """``scores.csv`` and ``scores.md`` in ``folder``; returns the Markdown table."""
    from medcl.io.atomic import write_text

    table = folder.write_table("scores", score_table(row))
    write_text(folder.root / "scores.md", table)
    return table


def pretrain_run(cfg: GraphConfig, out: Path, *, progress: bool = True) -> Path:
    """``medcl core graph pretrain``: load and check everything, then train into ``out``."""
    import pandas as pd

    from medcl.io import RunFolder

    graph = load_graph(cfg.data, cfg.features, cfg.nodes, cfg.seed)
    prep = prepare(cfg, graph)
    folder = RunFolder.create(out, overwrite=True)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "command": "medcl core graph pretrain", "paper": PAPERS[cfg.method],
        "resolved": {"temperature": cfg.tau, "communities": prep.k},
        "graph": {"source": graph.source, "nodes": graph.num_nodes,
                  "edges": int(graph.edge_index.shape[1]), "features": int(graph.x.shape[1]),
                  "target": graph.target, "feat_dims": prep.feat_dims,
                  "metapaths": [p.name for p in prep.paths] if prep.paths else None,
                  "notes": graph.notes}})
    model, history, seconds = train(cfg, prep, progress=progress)
    folder.write_metrics(pd.DataFrame(history))
    folder.save_model(model.state_dict())
    z, comm = embeddings(cfg, model, prep)
    row = scores(z, comm, graph, graph.labels, cfg.seed, cfg.test_size)
    table = write_scores(folder, row)
    plot_embedding(folder, z, comm, f"{cfg.label} on {Path(graph.source).name}")
    from .figures import plot_loss

    plot_loss(folder, history, cfg.label)
    lines = [f"# {cfg.label} on {graph.source}", "",
             f"{PAPERS[cfg.method]}" + (f"; with {PAPERS['pot']}, kappa {cfg.kappa}"
                                        if cfg.pot else "") + ".",
             f"{graph.num_nodes} nodes, {graph.edge_index.shape[1] // 2} undirected edges, "
             f"{graph.x.shape[1]} features; {len(history)} epochs in {seconds:.1f} s; "
             f"temperature {cfg.tau}; seed {cfg.seed}"
             + (f"; mini-batches of {cfg.batch_nodes} seed nodes, fan-out "
                f"{list(cfg.fanout)}" if cfg.batch_nodes else "; full batch") + ".", ""]
    lines += [f"- {n}" for n in graph.notes]
    lines += ["", f"Scores ({prep.k} communities; probe: logistic regression on a stratified "
              f"{1 - cfg.test_size:.0%}/{cfg.test_size:.0%} split of the labelled nodes; NMI/ARI "
              "of the communities against the labels; modularity of the communities):", "",
              table, "", "![embedding](embedding.png)", "", "![training loss](loss.png)"]
    folder.write_report("\n".join(lines))
    return folder.report_path


def load_run(run_dir: Path) -> tuple[GraphConfig, dict[str, Any], GraphModel, Prepared]:
    """Config, record, trained model and the prepared training graph of a pretrain run."""
    from medcl.io import RunFolder

    folder = RunFolder(Path(run_dir))
    record = folder.read_config()
    try:
        raw = dict(record["config"])
        if record.get("command") != "medcl core graph pretrain":
            raise KeyError("command")
        cfg = GraphConfig(**raw)
    except (KeyError, TypeError, ValueError, ConfigError) as exc:
        raise RunFolderError("config.yaml was not written by `medcl core graph pretrain`",
                             path=folder.config_path,
                             fix="point --model to a graph pretrain run folder") from exc
    graph = load_graph(cfg.data, cfg.features, cfg.nodes, cfg.seed)
    prep = prepare(cfg, graph)
    model = build_model(cfg, prep)
    try:
        model.load_state_dict(folder.load_model())
    except RuntimeError as exc:
        raise RunFolderError("model.pt does not match config.yaml", path=folder.model_path,
                             fix="retrain into this folder") from exc
    model.eval()
    return cfg, record, model, prep

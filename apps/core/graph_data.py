"""Graphs for ``medcl core graph``: offline synthetic sets and user files, checked at the edge.

Offline sets
------------
- ``karate``: PyG's :class:`~torch_geometric.datasets.KarateClub` (34 nodes, 4 communities of
  the PyG labels, one-hot node features), built in, no download.
- ``sbm``: a planted-partition stochastic block model (``--nodes`` nodes in 4 equal blocks,
  expected within-block degree 8 and between-block degree 2) with noisy community-correlated
  features (block mean + unit Gaussian noise, 32 dimensions; the means are 1.0 apart, so
  features alone separate the blocks only partly). Sampled in torch in ``O(E)``, so 100k
  nodes take a second.
- ``lfr``: NetworkX's LFR benchmark (Lancichinetti et al. 2008) with its planted communities
  (``tau1 = 3``, ``tau2 = 1.5``, ``mu = 0.1``, average degree 5, minimum community 20) and the
  same kind of noisy features.
- ``hetero``: a small synthetic heterogeneous graph (papers, authors, subjects) whose papers
  belong to 3 classes; each paper has 2 authors, mostly from its class's pool, and 1 subject,
  mostly its class's; meta-paths ``paper-author-paper`` and ``paper-subject-paper``.

Files
-----
- ``.pt``: a PyG ``Data`` or ``HeteroData`` saved with :func:`torch.save`, loaded with
  ``weights_only=True`` under PyG's safe globals, so a pickle with code in it is refused, never
  run. ``y`` (or ``data[target].y``) gives the communities/labels.
- ``.csv``: an edge list (the first two columns are source and target node ids); node features
  from ``--features FILE.csv`` (first column the node id, the others numbers). Without features
  each node gets a one-hot identity (up to 5,000 nodes) or degree features.
- ``.graphml`` / ``.gml``: a NetworkX graph; a node attribute ``community``, ``label`` or
  ``club`` gives the labels.

Graphs are made undirected, duplicate edges and self-loops removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from medcl.io.errors import ConfigError, InputFileError

SYNTHETIC = ("karate", "sbm", "lfr", "hetero")
FEATURE_DIM = 32
IDENTITY_MAX = 5000


@dataclass
class GraphSet:
    """One graph, ready for training: features, undirected edges, labels, node ids.

    For a heterogeneous graph ``x`` / ``edge_index`` are the target type's features and the
    union of its meta-path adjacencies, and ``hetero`` holds the whole ``HeteroData``.
    """

    source: str
    x: Tensor
    edge_index: Tensor
    node_ids: list[str]
    labels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    hetero: Any = None
    target: str | None = None
    metapaths: str | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def n_communities(self) -> int | None:
        return None if self.labels is None else int(len(np.unique(self.labels)))


def undirected(edge_index: Tensor, n: int) -> Tensor:
    """Both directions, no duplicates, no self-loops: (2, E)."""
    ei = torch.cat([edge_index, edge_index.flip(0)], 1)
    ei = ei[:, ei[0] != ei[1]]
    key = torch.unique(ei[0] * n + ei[1])
    return torch.stack([key // n, key % n])


def _noisy_features(labels: np.ndarray, gen: torch.Generator, dim: int = FEATURE_DIM,
                    spread: float = 1.0) -> Tensor:
    k = int(labels.max()) + 1
    means = torch.randn(k, dim, generator=gen)
    means = spread * means / means.norm(dim=1, keepdim=True) * (dim ** 0.5) / 4
    y = torch.as_tensor(labels, dtype=torch.long)
    return means[y] + torch.randn(len(labels), dim, generator=gen)


def planted_partition(n: int, k: int = 4, deg_in: float = 8.0, deg_out: float = 2.0,
                      seed: int = 0) -> tuple[Tensor, np.ndarray]:
    """SBM with ``k`` equal blocks and expected within/between-block degrees, sampled edge by
    edge (``O(E)``): ``(edge_index (2, E) undirected, labels (n,))``."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % k
    labels = labels[torch.randperm(n, generator=gen)]
    members = [torch.nonzero(labels == c).flatten() for c in range(k)]
    m_in = int(n * deg_in / 2)
    m_out = int(n * deg_out / 2)
    src = torch.randint(0, n, (m_in + m_out,), generator=gen)
    dst = torch.empty_like(src)
    block = labels[src[:m_in]]
    sizes = torch.tensor([len(m) for m in members])
    pick = (torch.rand(m_in, generator=gen) * sizes[block]).long()
    offsets = torch.cumsum(torch.cat([torch.zeros(1, dtype=torch.long), sizes[:-1]]), 0)
    flat = torch.cat(members)
    dst[:m_in] = flat[offsets[block] + pick]
    other = (labels[src[m_in:]] + torch.randint(1, k, (m_out,), generator=gen)) % k
    pick = (torch.rand(m_out, generator=gen) * sizes[other]).long()
    dst[m_in:] = flat[offsets[other] + pick]
    return undirected(torch.stack([src, dst]), n), labels.numpy()


def _from_networkx(g, source: str, notes: list[str], label_keys=("community", "label",
                                                                   "club")) -> GraphSet:
    nodes = list(g.nodes())
    index = {v: i for i, v in enumerate(nodes)}
    pairs = [(index[a], index[b]) for a, b in g.edges()]
    n = len(nodes)
    ei = torch.tensor(pairs, dtype=torch.long).T if pairs else torch.zeros(2, 0, dtype=torch.long)
    labels = None
    for key in label_keys:
        values = [g.nodes[v].get(key) for v in nodes]
        if all(v is not None for v in values):
            as_text = [str(sorted(v)) if isinstance(v, set | frozenset) else str(v)
                       for v in values]
            _, labels = np.unique(as_text, return_inverse=True)
            notes.append(f"communities from the node attribute {key!r}")
            break
    return GraphSet(source, torch.zeros(n, 0), undirected(ei, n) if pairs else ei,
                    [str(v) for v in nodes], labels, notes)


def _structural_features(gs: GraphSet) -> None:
    n = gs.num_nodes
    if gs.x.shape[1] > 0:
        return
    if n <= IDENTITY_MAX:
        gs.x = torch.eye(n)
        gs.notes.append("no node features: one-hot node identity used")
    else:
        deg = torch.bincount(gs.edge_index[0], minlength=n).float()
        gs.x = torch.stack([torch.ones(n), torch.log1p(deg), deg / deg.max().clamp_min(1)], 1)
        gs.notes.append("no node features: [1, log(1 + degree), degree / max] used")


def synthetic(name: str, nodes: int, seed: int = 0) -> GraphSet:
    """One of :data:`SYNTHETIC` (``nodes`` sizes ``sbm``; ``lfr`` uses it too)."""
    gen = torch.Generator().manual_seed(seed + 1)
    if name == "karate":
        from torch_geometric.datasets import KarateClub

        d = KarateClub()[0]
        return GraphSet("karate", d.x.float(), undirected(d.edge_index, d.num_nodes),
                        [str(i) for i in range(d.num_nodes)], d.y.numpy(),
                        ["PyG KarateClub: 34 nodes, 4 communities, one-hot features"])
    if name == "sbm":
        ei, labels = planted_partition(nodes, 4, seed=seed)
        return GraphSet("sbm", _noisy_features(labels, gen), ei, [str(i) for i in range(nodes)],
                        labels, [f"planted partition: {nodes} nodes, 4 blocks, expected degree "
                                 "8 within and 2 between blocks; 32 noisy block-mean features"])
    if name == "lfr":
        import networkx as nx

        try:
            g = nx.LFR_benchmark_graph(nodes, 3.0, 1.5, 0.1, average_degree=5,
                                       min_community=20, seed=10 + seed, max_iters=500)
        except nx.ExceededMaxIterations as exc:
            raise ConfigError(f"LFR generation did not converge for --nodes {nodes}",
                              fix="try another --nodes (e.g. 250) or seed") from exc
        gs = _from_networkx(g, "lfr", [f"LFR benchmark: {nodes} nodes, tau1 3, tau2 1.5, "
                                       "mu 0.1, average degree 5, minimum community 20"])
        gs.x = _noisy_features(gs.labels, gen)
        return gs
    if name == "hetero":
        return synthetic_hetero(seed)
    raise ConfigError(f"--data {name!r} is unknown", fix=f"give one of {', '.join(SYNTHETIC)} "
                      "or a .pt / .csv / .graphml / .gml file")


def synthetic_hetero(seed: int = 0, papers: int = 180, classes: int = 3) -> GraphSet:
    """Papers (3 classes, noisy features), authors (10 per class), subjects (2 per class)."""
    from torch_geometric.data import HeteroData

    gen = torch.Generator().manual_seed(seed + 7)
    y = torch.arange(papers) % classes
    n_auth, n_subj = 10 * classes, 2 * classes

    def pick(pool_per_class: int, p_own: float, count: int) -> Tensor:
        own = torch.rand(papers, count, generator=gen) < p_own
        cls = torch.where(own, y[:, None], torch.randint(0, classes, (papers, count),
                                                           generator=gen))
        return cls * pool_per_class + torch.randint(0, pool_per_class, (papers, count),
                                                    generator=gen)

    authors, subjects = pick(10, 0.8, 2), pick(2, 0.7, 1)
    pa = torch.stack([torch.arange(papers).repeat_interleave(2), authors.flatten()])
    ps = torch.stack([torch.arange(papers), subjects.flatten()])
    data = HeteroData()
    data["paper"].x = _noisy_features(y.numpy(), gen, spread=0.6)
    data["paper"].y = y
    data["author"].x = torch.randn(n_auth, 8, generator=gen)
    data["subject"].x = torch.randn(n_subj, 4, generator=gen)
    data["paper", "written_by", "author"].edge_index = pa
    data["author", "writes", "paper"].edge_index = pa.flip(0)
    data["paper", "about", "subject"].edge_index = ps
    data["subject", "has", "paper"].edge_index = ps.flip(0)
    return hetero_set(data, "hetero", ["synthetic heterogeneous graph: 180 papers in 3 classes, "
                                       "30 authors, 6 subjects"],
                      metapaths="paper-author-paper,paper-subject-paper")


def hetero_set(data: Any, source: str, notes: list[str], metapaths: str | None = None,
               target: str | None = None) -> GraphSet:
    """A :class:`GraphSet` around a ``HeteroData`` (target: the type with ``y``, or the first)."""
    if target is None:
        with_y = [t for t in data.node_types if "y" in data[t]]
        target = with_y[0] if with_y else data.node_types[0]
    n = data[target].num_nodes
    x = data[target].x if "x" in data[target] else torch.eye(n)
    y = data[target].y.numpy() if "y" in data[target] else None
    return GraphSet(source, x.float(), torch.zeros(2, 0, dtype=torch.long),
                    [str(i) for i in range(n)], y, notes, hetero=data, target=target,
                    metapaths=metapaths)


def safe_globals() -> list[Any]:
    """PyG classes a saved ``Data`` / ``HeteroData`` needs under ``weights_only=True``."""
    from torch_geometric.data import Data, HeteroData
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import BaseStorage, EdgeStorage, GlobalStorage, NodeStorage

    return [Data, HeteroData, DataEdgeAttr, DataTensorAttr, BaseStorage, EdgeStorage,
            GlobalStorage, NodeStorage]


def _load_pt(path: Path) -> GraphSet:
    from torch_geometric.data import Data, HeteroData

    try:
        with torch.serialization.safe_globals(safe_globals()):
            obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad input file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"not a PyG graph that loads with weights_only=True ({first[:160]})",
                             path=path, fix="save a torch_geometric Data or HeteroData with "
                             "torch.save") from exc
    if isinstance(obj, HeteroData):
        return hetero_set(obj, str(path), [f"HeteroData from {path.name}"])
    if not isinstance(obj, Data) or obj.edge_index is None:
        raise InputFileError(f"holds a {type(obj).__name__}, not a Data/HeteroData with "
                             "edge_index", path=path, fix="save a torch_geometric Data with "
                             "x and edge_index")
    n = int(obj.num_nodes)
    x = obj.x.float() if obj.x is not None else torch.zeros(n, 0)
    y = obj.y.numpy() if obj.y is not None and obj.y.shape[:1] == (n,) else None
    gs = GraphSet(str(path), x, undirected(obj.edge_index.long(), n),
                  [str(i) for i in range(n)], y, [f"PyG Data from {path.name}"])
    return gs


def _load_csv(path: Path, features: Path | None) -> GraphSet:
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"cannot read the edge list ({type(exc).__name__})", path=path,
                             fix="give a CSV with source,target columns") from exc
    if table.shape[1] < 2 or table.iloc[:, :2].isna().any().any():
        raise InputFileError("is not an edge list (needs two columns source,target, no blanks)",
                             path=path, fix="give a CSV with source,target columns")
    ids = pd.unique(table.iloc[:, :2].to_numpy().ravel()).tolist()
    feats = None
    if features is not None:
        feats = _read_features(features)
        extra = [v for v in ids if v not in feats.index]
        if extra:
            raise InputFileError(f"has {len(feats)} rows but the edge list names nodes it "
                                 f"lacks (e.g. {extra[0]!r})", path=features,
                                 fix="give one feature row per node of the edge list")
        ids += [v for v in feats.index if v not in set(ids)]  # isolated nodes with features
    index = {v: i for i, v in enumerate(ids)}
    src = torch.tensor(table.iloc[:, 0].map(index).to_numpy(), dtype=torch.long)
    dst = torch.tensor(table.iloc[:, 1].map(index).to_numpy(), dtype=torch.long)
    n = len(ids)
    x = torch.zeros(n, 0) if feats is None else torch.tensor(
        feats.loc[ids].to_numpy(dtype=np.float32))
    return GraphSet(str(path), x, undirected(torch.stack([src, dst]), n), [str(v) for v in ids],
                    None, [f"edge list {path.name}" + ("" if features is None else
                                                       f" with features {features.name}")])


def _read_features(path: Path):
    import pandas as pd

    try:
        feats = pd.read_csv(path, index_col=0)
        feats.index = feats.index.astype(str)
        values = feats.to_numpy(dtype=np.float32)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputFileError(f"is not a numeric feature table ({type(exc).__name__})", path=path,
                             fix="give a CSV: node id, then one numeric column per feature") \
            from exc
    if values.shape[1] == 0 or not np.isfinite(values).all():
        raise InputFileError("has no numeric feature columns or non-finite values", path=path,
                             fix="give a CSV: node id, then one numeric column per feature")
    if feats.index.duplicated().any():
        raise InputFileError("names a node twice", path=path, fix="give one row per node")
    return feats


def load_graph(data: str, features: str | None = None, nodes: int = 400,
               seed: int = 0) -> GraphSet:
    """The graph named by ``--data`` (see the module docstring), checked.

    The synthetic graphs are drawn with a fixed seed, so every training ``seed`` (and every
    ``compare`` unit) sees the same graph; ``seed`` is kept for the call sites' symmetry.

    Raises
    ------
    InputFileError
        A missing or unreadable file, a file that is not a graph, features with the wrong row
        count, a graph with no edges.
    ConfigError
        An unknown synthetic name.
    """
    feat_path = None if features is None else Path(features)
    if feat_path is not None and not feat_path.is_file():
        raise InputFileError("features file not found", path=feat_path,
                             fix="give an existing CSV")
    if data in SYNTHETIC:
        if feat_path is not None:
            raise ConfigError(f"--features is for edge-list CSVs, not --data {data}",
                              fix="drop --features")
        if data in ("sbm", "lfr") and nodes < 40:
            raise ConfigError(f"--nodes {nodes} is too small for {data}",
                              fix="give --nodes >= 40")
        gs = synthetic(data, nodes, seed=0)
    else:
        path = Path(data)
        if not path.is_file():
            raise InputFileError("graph file not found", path=path,
                                 fix=f"give an existing file or one of {', '.join(SYNTHETIC)}")
        suffix = path.suffix.lower()
        if suffix == ".pt":
            gs = _load_pt(path)
        elif suffix == ".csv":
            gs = _load_csv(path, feat_path)
        elif suffix in (".graphml", ".gml"):
            import networkx as nx

            try:
                g = nx.read_graphml(path) if suffix == ".graphml" else nx.read_gml(path)
            except Exception as exc:  # noqa: BLE001 - networkx raises many kinds
                raise InputFileError(f"is not a readable {suffix[1:].upper()} graph "
                                     f"({type(exc).__name__})", path=path,
                                     fix="export the graph with networkx.write_graphml") from exc
            gs = _from_networkx(nx.Graph(g), str(path), [f"{suffix[1:].upper()} {path.name}"])
        else:
            raise InputFileError(f"unknown graph format {suffix or '(no suffix)'}", path=path,
                                 fix="give a .pt (PyG), .csv (edge list), .graphml or .gml")
        if feat_path is not None and suffix != ".csv":
            raise ConfigError("--features is for edge-list CSVs", fix="drop --features")
        if gs.hetero is None and gs.x.shape[0] != gs.num_nodes:
            raise InputFileError(f"features have {gs.x.shape[0]} rows for {gs.num_nodes} nodes",
                                 path=path, fix="give one feature row per node")
    if gs.hetero is None:
        if gs.num_nodes < 3 or gs.edge_index.shape[1] == 0:
            raise InputFileError(f"has {gs.num_nodes} node(s) and no edges between distinct "
                                 "nodes: nothing to learn from", path=data,
                                 fix="give a graph with edges")
        _structural_features(gs)
    return gs


def read_labels(path: Path, node_ids: list[str]) -> np.ndarray:
    """Labels CSV ``node,label`` matched to the graph's nodes (every node exactly once)."""
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"cannot read the labels ({type(exc).__name__})", path=path,
                             fix="give a CSV with columns node,label") from exc
    if table.shape[1] < 2 or table.iloc[:, :2].isna().any().any():
        raise InputFileError("needs two columns node,label without blanks", path=path,
                             fix="give a CSV with columns node,label")
    mapping = dict(zip(table.iloc[:, 0], table.iloc[:, 1], strict=True))
    missing = [v for v in node_ids if v not in mapping]
    extra = set(mapping) - set(node_ids)
    if missing or extra or len(table) != len(mapping):
        what = (f"lacks {len(missing)} of the graph's {len(node_ids)} nodes (e.g. {missing[0]!r})"
                if missing else f"names {len(extra)} node(s) not in the graph "
                f"(e.g. {sorted(extra)[0]!r})" if extra else "names a node twice")
        raise InputFileError(what, path=path, fix="give one row per node of the graph")
    _, labels = np.unique([mapping[v] for v in node_ids], return_inverse=True)
    return labels

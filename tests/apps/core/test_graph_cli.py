"""``medcl core graph`` end to end on files written here (edge list + features, GraphML, PyG
.pt, HeteroData .pt), ``compare``, the demo step, and every bad input: exit 2, one line naming
the problem, nothing written."""

import networkx as nx
import pandas as pd
import pytest
import torch
import yaml

SMALL = ["--epochs", "3", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _edge_list(tmp_path, n=30):
    g = nx.planted_partition_graph(2, n // 2, 0.4, 0.03, seed=1)
    edges = pd.DataFrame([(f"v{a}", f"v{b}") for a, b in g.edges()],
                         columns=["source", "target"])
    edges.to_csv(tmp_path / "edges.csv", index=False)
    feats = pd.DataFrame(torch.randn(n, 5).numpy(), index=[f"v{i}" for i in range(n)])
    feats.index.name = "node"
    feats.to_csv(tmp_path / "feats.csv")
    labels = pd.DataFrame({"node": [f"v{i}" for i in range(n)], "label": [i // (n // 2)
                                                                          for i in range(n)]})
    labels.to_csv(tmp_path / "labels.csv", index=False)
    return tmp_path / "edges.csv", tmp_path / "feats.csv", tmp_path / "labels.csv"


@pytest.mark.slow  # ~25 s on a loaded machine, most of it importing PyG, sklearn, matplotlib
def test_pretrain_embed_evaluate_on_an_edge_list(tmp_path, core_cli):
    edges, feats, labels = _edge_list(tmp_path)
    run = tmp_path / "run"
    code, out, err = core_cli(["graph", "pretrain", "--method", "gcool", "--pot", "--data",
                               edges, "--features", feats, "--communities", "2", "--out", run,
                               *SMALL])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "scores.csv",
                 "scores.md", "embedding.png", "loss.png"):
        assert (run / name).exists(), name
    record = yaml.safe_load((run / "config.yaml").read_text())
    assert record["resolved"]["temperature"] == 0.4 and record["graph"]["features"] == 5
    log = pd.read_csv(run / "metrics.csv")
    assert list(log["epoch"]) == [1, 2, 3] and {"node", "deca", "pot"} <= set(log.columns)
    state = torch.load(run / "model.pt", weights_only=True)
    assert "centres" in state
    emb = tmp_path / "nodes.csv"
    code, out, err = core_cli(["graph", "embed", "--model", run, "--out", emb])
    assert code == 0, err
    table = pd.read_csv(emb)
    assert len(table) == 30 and table["community"].between(0, 1).all()
    assert set(table["node"]) == {f"v{i}" for i in range(30)}
    code, out, err = core_cli(["graph", "evaluate", "--model", run, "--labels", labels,
                               "--out", tmp_path / "eval"])
    assert code == 0, err
    scores = pd.read_csv(tmp_path / "eval" / "scores.csv")
    assert 0 <= scores["probe_acc"][0] <= 1 and -1 <= scores["modularity"][0] <= 1


def test_graphml_pt_and_hetero_inputs(tmp_path, core_cli):
    from torch_geometric.data import Data

    from medcl.core.graph_data import synthetic_hetero

    g = nx.karate_club_graph()
    nx.write_graphml(g, tmp_path / "k.graphml")
    code, out, err = core_cli(["graph", "pretrain", "--data", tmp_path / "k.graphml",
                               "--out", tmp_path / "a", *SMALL])
    assert code == 0, err
    assert "club" in (tmp_path / "a" / "report.md").read_text()  # labels from the attribute
    ei = torch.tensor(list(g.edges())).T
    torch.save(Data(x=torch.randn(34, 6), edge_index=ei, y=torch.arange(34) % 2),
               tmp_path / "k.pt")
    code, out, err = core_cli(["graph", "pretrain", "--data", tmp_path / "k.pt",
                               "--batch-nodes", "16", "--out", tmp_path / "b", *SMALL])
    assert code == 0, err
    torch.save(synthetic_hetero().hetero, tmp_path / "h.pt")
    code, out, err = core_cli(["graph", "pretrain", "--method", "meow", "--data",
                               tmp_path / "h.pt", "--metapaths",
                               "paper-author-paper,paper-subject-paper",
                               "--out", tmp_path / "c", *SMALL])
    assert code == 0, err
    assert pd.read_csv(tmp_path / "c" / "scores.csv")["nmi"].notna().all()


def test_compare_on_sbm_then_resume(tmp_path, core_cli):
    args = ["graph", "compare", "--methods", "grace,gcool+pot", "--data", "sbm", "--nodes",
            "120", "--seeds", "0,1", "--epochs", "3", "--out", tmp_path / "cmp", "--quiet"]
    code, out, err = core_cli(args)
    assert code == 0, err
    summary = pd.read_csv(tmp_path / "cmp" / "compare.csv")
    assert list(summary["method"]) == ["grace", "gcool+pot"] and (summary["seeds"] == 2).all()
    assert (tmp_path / "cmp" / "compare.png").exists() and "± " in out
    units = pd.read_csv(tmp_path / "cmp" / "units.csv")
    assert len(units) == 4 and (units["status"] == "ok").all()
    code, out, err = core_cli(args)  # nothing left to run
    assert code == 0 and len(pd.read_csv(tmp_path / "cmp" / "units.csv")) == 4


def test_demo_step(tmp_path):
    from medcl.core.graph_demo import STEP

    text = STEP.run(tmp_path, 2, 0)
    assert text.startswith("## core-graph") and "grace+pot" in text
    assert (tmp_path / "compare.png").exists()


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def _bad_inputs(tmp_path):
    edges, feats, labels = _edge_list(tmp_path)
    (tmp_path / "junk.graphml").write_text("this is not xml")
    short = pd.read_csv(feats).iloc[:10]
    short.to_csv(tmp_path / "short.csv", index=False)
    pd.DataFrame({"source": ["a", "b"], "target": ["a", "b"]}).to_csv(tmp_path / "loops.csv",
                                                                       index=False)
    torch.save({"x": _Evil(tmp_path / "pwned")}, tmp_path / "evil.pt")
    pd.DataFrame({"node": ["v0", "zz"], "label": [0, 1]}).to_csv(tmp_path / "badlab.csv",
                                                                 index=False)
    return edges, feats, labels


@pytest.mark.parametrize("case,needle", [
    ("junk", "not a readable GRAPHML graph"),
    ("short_features", "edge list names nodes it lacks"),
    ("metapath", "unknown node type(s) venue"),
    ("isolated", "no edges between distinct nodes"),
    ("evil", "weights_only=True"),
    ("missing", "graph file not found"),
    ("hetero_on_grace", "needs a heterogeneous graph"),
])
def test_bad_inputs_exit_2_and_write_nothing(tmp_path, core_cli, case, needle):
    edges, feats, _ = _bad_inputs(tmp_path)
    args = {
        "junk": ["--data", tmp_path / "junk.graphml"],
        "short_features": ["--data", edges, "--features", tmp_path / "short.csv"],
        "metapath": ["--method", "meow", "--data", "hetero", "--metapaths",
                     "paper-venue-paper"],
        "isolated": ["--data", tmp_path / "loops.csv"],
        "evil": ["--data", tmp_path / "evil.pt"],
        "missing": ["--data", tmp_path / "nope.csv"],
        "hetero_on_grace": ["--method", "meow", "--data", "karate"],
    }[case]
    run = tmp_path / "run"
    code, out, err = core_cli(["graph", "pretrain", *args, "--out", run, *SMALL])
    assert code == 2, (out, err)
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not run.exists()
    assert not (tmp_path / "pwned").exists()  # the pickle's code never ran


def test_labels_not_matching_nodes(tmp_path, core_cli):
    edges, feats, _ = _bad_inputs(tmp_path)
    run = tmp_path / "run"
    code, _, err = core_cli(["graph", "pretrain", "--data", edges, "--features", feats,
                             "--out", run, *SMALL])
    assert code == 0, err
    code, _, err = core_cli(["graph", "evaluate", "--model", run, "--labels",
                             tmp_path / "badlab.csv", "--out", tmp_path / "ev"])
    assert code == 2 and "lacks 29 of the graph's 30 nodes" in err
    assert not (tmp_path / "ev").exists()

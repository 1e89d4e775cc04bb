"""``medcl core graph``: pretrain, embed, evaluate and compare with the core's graph methods
(heavy imports inside commands, so ``medcl --help`` stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="graph",
    help="Graph methods (GRACE, gCooL, MEOW, AdaMEOW; POT as a plug-in) on PyTorch Geometric.",
    no_args_is_help=True,
    add_completion=False,
)

DATA_HELP = ("karate, sbm, lfr, hetero, or a file: PyG .pt (Data/HeteroData), edge-list .csv, "
             ".graphml or .gml.")


@app.callback()
def _group() -> None:
    """Pretrain, embed, evaluate and compare."""


@app.command()
def methods() -> None:
    """The graph methods and their papers."""
    from .graph_train import PAPERS

    for name, paper in PAPERS.items():
        typer.echo(f"{name:8s} {paper}")


def _pair(text: str, flag: str) -> tuple[float, float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is not two comma-separated numbers",
                                 param_hint=flag) from err
    if len(values) != 2 or not all(0 <= v < 1 for v in values):
        raise typer.BadParameter(f"{text!r} must be two numbers in [0, 1)", param_hint=flag)
    return values[0], values[1]


@app.command()
def pretrain(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write.")],
    method: Annotated[str, typer.Option(help="grace, gcool, meow or adameow.")] = "grace",
    pot: Annotated[bool, typer.Option("--pot", help="Add POT's certified-compactness term "
                                      "(grace, gcool).")] = False,
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "karate",
    features: Annotated[Path | None, typer.Option(
        help="Node features CSV for an edge-list .csv (node id, then numbers).")] = None,
    metapaths: Annotated[str | None, typer.Option(
        help='Meta-paths of a heterogeneous graph, e.g. "paper-author-paper,'
        'paper-subject-paper".')] = None,
    nodes: Annotated[int, typer.Option(help="Nodes of the sbm / lfr graphs.")] = 400,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 100,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    temperature: Annotated[float | None, typer.Option(
        help="Loss temperature (default: the method's paper value).")] = None,
    drop_edge: Annotated[str, typer.Option(help="Edge-drop rates of the two views.")]
    = "0.2,0.4",
    mask_feature: Annotated[str, typer.Option(help="Feature-mask rates of the two views.")]
    = "0.3,0.4",
    kappa: Annotated[float, typer.Option(help="POT's mixing weight.")] = 0.4,
    communities: Annotated[int | None, typer.Option(
        help="Communities (default: the true number when labelled, else 8).")] = None,
    batch_nodes: Annotated[int | None, typer.Option(
        help="Mini-batches of N seed nodes with sampled 2-hop neighbourhoods.")] = None,
    chunk_size: Annotated[int | None, typer.Option(
        help="Anchors per block of the InfoNCE kernel (memory O(chunk x N)).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Pretrain node embeddings with one method; scores them against the true communities."""
    from .graph_train import GraphConfig, pretrain_run

    cfg = GraphConfig(method=method, pot=pot, data=data,
                      features=None if features is None else str(features),
                      metapaths=metapaths, nodes=nodes, epochs=epochs, lr=lr,
                      temperature=temperature, drop_edge=_pair(drop_edge, "--drop-edge"),
                      mask_feature=_pair(mask_feature, "--mask-feature"), kappa=kappa,
                      communities=communities, batch_nodes=batch_nodes, chunk_size=chunk_size,
                      seed=seed)
    typer.echo(f"report: {pretrain_run(cfg, out, progress=not quiet)}")


@app.command()
def embed(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core graph pretrain`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output table (.parquet or .csv).")],
    data: Annotated[str | None, typer.Option(
        help="Graph to embed (default: the training graph). " + DATA_HELP)] = None,
    features: Annotated[Path | None, typer.Option(help="Node features CSV for a .csv graph.")]
    = None,
) -> None:
    """Node embeddings and communities, one row per node (node, community, z_0, ...)."""
    from .graph_compare import embed_run

    table = embed_run(model, data, None if features is None else str(features), out)
    typer.echo(f"{len(table)} nodes -> {out}")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Run folder of `medcl core graph pretrain`.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Evaluation folder to write.")],
    labels: Annotated[Path | None, typer.Option(
        help="CSV node,label (default: the graph's own labels).")] = None,
) -> None:
    """Linear probe, NMI, ARI and modularity of a run's embeddings and communities."""
    from .graph_compare import evaluate_run

    typer.echo(f"report: {evaluate_run(model, labels, out)}")


@app.command()
def compare(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder to write (resumable).")],
    methods: Annotated[str, typer.Option(help="Comma-separated: grace, grace+pot, gcool, "
                                         "gcool+pot, meow, adameow.")]
    = "grace,grace+pot,gcool,gcool+pot",
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "sbm",
    features: Annotated[Path | None, typer.Option(help="Node features CSV for a .csv graph.")]
    = None,
    metapaths: Annotated[str | None, typer.Option(help="Meta-paths (meow, adameow).")] = None,
    nodes: Annotated[int, typer.Option(help="Nodes of the sbm / lfr graphs.")] = 400,
    seeds: Annotated[str, typer.Option(help="Comma-separated seeds.")] = "0,1,2",
    epochs: Annotated[int, typer.Option(help="Training epochs of every unit.")] = 50,
    batch_nodes: Annotated[int | None, typer.Option(
        help="Mini-batches of N seed nodes (grace, gcool).")] = None,
    shard: Annotated[str | None, typer.Option(
        help="Run only share K of N of the units (K/N, K from 0).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress lines.")] = False,
) -> None:
    """Every method x seed with the same epochs, graph and scores.

    One unit = method x seed; rows go to OUT/units.csv as units finish and compare.csv,
    compare.md and compare.png are rebuilt; rerunning the same command runs only the missing
    units. A failed unit exits with status 2 after the others finish."""
    from medcl.io.cli import int_list
    from medcl.io.units import parse_shard

    from .graph_compare import compare_run
    from .graph_train import GraphConfig

    base = GraphConfig(data=data, features=None if features is None else str(features),
                       metapaths=metapaths, nodes=nodes, epochs=epochs, batch_nodes=batch_nodes)
    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    typer.echo(compare_run(out, base, chosen, int_list(seeds, "--seeds"), progress=not quiet,
                           shard=parse_shard(shard)))

"""``medcl core graph compare``, ``embed`` and ``evaluate``.

``compare``: one unit = method x seed (:func:`medcl.io.units.run_units`: a row in ``units.csv``
as each unit finishes, resume, progress lines, shards); every unit trains the same number of
epochs on the same graph and is scored the same way (probe, NMI, ARI, modularity). A method is
``grace``, ``gcool``, ``meow``, ``adameow``, or ``grace+pot`` / ``gcool+pot``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medcl.io.errors import ConfigError, InputFileError, MedclError

from .graph_data import load_graph, read_labels
from .graph_train import (
    HETEROGENEOUS,
    METHODS,
    GraphConfig,
    embeddings,
    load_run,
    plot_embedding,
    prepare,
    scores,
    train,
    write_scores,
)

UNITS = "units.csv"
SCORES = ["probe_acc", "nmi", "ari", "modularity"]


def parse_method(text: str) -> tuple[str, bool]:
    """``"gcool+pot"`` -> ``("gcool", True)``; unknown names are a ConfigError."""
    name, _, extra = text.strip().partition("+")
    if name not in METHODS or extra not in ("", "pot") or (extra and name in HETEROGENEOUS):
        raise ConfigError(f"--methods: {text!r} is not a method",
                          fix=f"choose from {', '.join(METHODS)}, grace+pot, gcool+pot")
    return name, extra == "pot"


def summarise(table: Any) -> Any:
    import pandas as pd

    ok = table[table["status"] == "ok"]
    rows = []
    for method in dict.fromkeys(table["method"]):
        part = ok[ok["method"] == method]
        row: dict[str, Any] = {"method": method, "seeds": len(part)}
        for col in [*SCORES, "train_seconds"]:
            values = pd.to_numeric(part[col], errors="coerce") if col in part else pd.Series([])
            row[f"{col}_mean"] = values.mean()
            row[f"{col}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def markdown(summary: Any, header: str) -> str:
    lines = [header, "", "| method | seeds | probe acc. | NMI | ARI | modularity | train s |",
             "| ------ | ----: | ---------: | --: | --: | ---------: | ------: |"]
    for r in summary.to_dict("records"):
        lines.append(f"| {r['method']} | {r['seeds']} | "
                     + " | ".join(_pm(r[f"{c}_mean"], r[f"{c}_std"]) for c in SCORES)
                     + f" | {r['train_seconds_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(summary: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medcl.io.atomic import save_figure

    x = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 * len(summary) + 1.5), 3.2))
    for k, col in enumerate(SCORES):
        ax.bar(x + (k - 1.5) * 0.2, summary[f"{col}_mean"].fillna(0.0), 0.2,
               yerr=summary[f"{col}_std"].fillna(0.0), capsize=2, label=col)
    ax.set_xticks(x, summary["method"], rotation=30, ha="right")
    ax.set_ylim(-0.1, 1.25)
    ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def compare_run(out: Path, base: GraphConfig, methods: list[str], seeds: list[int], *,
                progress: bool = True, shard: Any = None) -> str:
    """Run (or resume) a comparison into ``out``; return ``compare.md``'s text."""
    from medcl.io import RunFolder
    from medcl.io.atomic import write_text
    from medcl.io.units import check_signature, failed_message, run_units

    if not methods or len(set(methods)) < len(methods):
        raise ConfigError(f"--methods {','.join(methods)} is empty or names a method twice",
                          fix="give e.g. --methods grace,grace+pot,gcool,gcool+pot")
    parsed = [parse_method(m) for m in methods]
    if not seeds or len(set(seeds)) < len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {seeds} must be distinct non-negative integers",
                          fix="give e.g. --seeds 0,1,2")
    graph = load_graph(base.data, base.features, base.nodes, 0)
    preps = {}
    for name, pot in parsed:  # check every method against the graph before writing anything
        cfg = replace(base, method=name, pot=pot)
        preps[(name, pot)] = prepare(cfg, copy.copy(graph))  # prepare may set edge_index
    signature = {"data": base.data, "nodes": graph.num_nodes, "features": base.features,
                 "metapaths": base.metapaths, "epochs": base.epochs, "lr": base.lr,
                 "hidden": base.hidden, "out_dim": base.out_dim, "batch_nodes": base.batch_nodes,
                 "communities": base.communities}
    out = Path(out)
    check_signature(out / UNITS, signature)
    folder = RunFolder.create(out)
    folder.write_config(base, extra={"command": "medcl core graph compare", "methods": methods,
                                     "seeds": seeds})
    header = (f"# Graph methods compared on {graph.source}\n\n"
              f"{graph.num_nodes} nodes; {base.epochs} epochs per method and seed; probe: "
              f"logistic regression on a stratified {1 - base.test_size:.0%}/"
              f"{base.test_size:.0%} split; NMI / ARI of each method's communities against the "
              "true ones; modularity of the communities. Mean ± std over seeds as measured on "
              f"this machine ({os.cpu_count()} CPU cores).")

    def work(key: dict[str, Any], _: Any) -> list[dict[str, Any]]:
        name, pot = parse_method(key["method"])
        cfg = replace(base, method=name, pot=pot, seed=int(key["seed"]))
        prep = preps[(name, pot)]
        model, history, seconds = train(cfg, prep, progress=False)
        z, comm = embeddings(cfg, model, prep)
        row = scores(z, comm, prep.graph, prep.graph.labels, cfg.seed, cfg.test_size)
        return [{"epochs": len(history), "train_seconds": round(seconds, 3),
                 "final_loss": history[-1]["loss"], **{c: row.get(c) for c in SCORES}}]

    def on_table(table: Any) -> None:
        summary = summarise(table)
        folder.write_table("compare", summary)
        write_text(out / "compare.md", markdown(summary, header))
        if len(summary):
            _plot(summary, out / "compare.png")

    units = [({"method": m, "seed": s}, None) for m in methods for s in seeds]
    result = run_units(units, work, out / UNITS,
                       columns=["method", "seed", "epochs", "train_seconds", "final_loss",
                                *SCORES], signature=signature,
                       progress="lines" if progress else "quiet", what="unit", shard=shard,
                       on_table=on_table)
    on_table(result.table)
    message = failed_message(out / UNITS, ["method", "seed"])
    if message is not None:
        raise MedclError(message, path=out / UNITS)
    return (out / "compare.md").read_text(encoding="utf-8")


def embed_run(model_dir: Path, data: str | None, features: str | None, out: Path) -> Any:
    """One row per node (``node``, ``community``, ``z_0..``) to ``.parquet`` or ``.csv``."""
    import pandas as pd

    from medcl.io import atomic_path, refuse_overwrite

    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ConfigError(f"unknown output format {suffix or '(none)'!r}", path=out,
                          fix="name the output *.parquet or *.csv")
    cfg, _, model, prep = load_run(model_dir)
    if data is not None:
        cfg2 = replace(cfg, data=str(data), features=features)
        graph = load_graph(cfg2.data, cfg2.features, cfg2.nodes, cfg2.seed)
        inputs = [p for p in (data, features) if p is not None and Path(p).exists()]
        refuse_overwrite(out, inputs)
        if not model.hetero:
            want = model.encoder.convs[0].in_channels
            if graph.x.shape[1] != want:
                raise InputFileError(f"nodes have {graph.x.shape[1]} features; the model was "
                                     f"trained on {want}", path=features or data,
                                     fix="give features of the training width")
        prep = prepare(cfg2, graph)
    try:
        z, comm = embeddings(cfg, model, prep)
    except RuntimeError as exc:  # a heterogeneous schema of other widths
        raise InputFileError(f"does not fit the trained model ({str(exc)[:120]})",
                             path=data or cfg.data, fix="give a graph of the training schema") \
            from exc
    table = pd.concat([pd.DataFrame({"node": prep.graph.node_ids, "community": comm}),
                       pd.DataFrame(z, columns=[f"z_{i}" for i in range(z.shape[1])])], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)
    return table


def evaluate_run(model_dir: Path, labels: Path | None, out: Path) -> Path:
    """Scores of a pretrain run's embeddings into the folder ``out``."""
    from medcl.io import RunFolder

    cfg, _, model, prep = load_run(model_dir)
    y = prep.graph.labels
    source = "the graph's own labels"
    if labels is not None:
        if not Path(labels).is_file():
            raise InputFileError("labels file not found", path=labels,
                                 fix="give a CSV node,label")
        y = read_labels(Path(labels), prep.graph.node_ids)
        source = str(labels)
    z, comm = embeddings(cfg, model, prep)
    row = scores(z, comm, prep.graph, y, cfg.seed, cfg.test_size)
    folder = RunFolder.create(out)
    folder.write_config(cfg, seed=cfg.seed, extra={"command": "medcl core graph evaluate",
                                                   "model": str(model_dir),
                                                   "labels": source})
    table = write_scores(folder, row)
    plot_embedding(folder, z, comm, f"{cfg.label} embeddings")
    note = ("" if y is not None else
            "\nNo labels: probe, NMI and ARI need --labels; only modularity is scored.\n")
    folder.write_report(f"# Evaluation of {model_dir}\n\n{cfg.label} on {prep.graph.source}; "
                        f"labels: {source if y is not None else 'none'}.\n{note}\n{table}\n"
                        "![embedding](embedding.png)\n")
    return folder.report_path

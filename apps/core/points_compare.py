"""``medcl core points compare``: the point methods under one harness, scored by probes.

One unit = method x seed (:func:`medcl.io.units.run_units`: a row in ``units.csv`` as each unit
finishes, resume, progress lines, shards), plus ``random-init`` (the same encoder untrained).
Every unit uses the same backbone, views, batch size and epochs (or an equal share of a
wall-clock budget) and the same probes: per-point linear-probe mIoU on held-out clouds at each
label fraction, and cloud accuracy.
"""

from __future__ import annotations

import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from medcl.io.errors import ConfigError, MedclError

from .points_data import load_clouds
from .points_train import (
    METHODS,
    PointsConfig,
    add_segments,
    build,
    probe,
    probe_rows,
    split_clouds,
    train,
)

UNITS = "units.csv"
BASELINE = "random-init"


def _columns(fractions: list[float]) -> list[str]:
    return ["epochs", "train_seconds", "final_loss", *[f"miou_{f:g}" for f in fractions],
            "cloud_acc"]


def summarise(table: Any, fractions: list[float]) -> Any:
    import pandas as pd

    ok = table[table["status"] == "ok"]
    rows = []
    for method in dict.fromkeys(table["method"]):
        part = ok[ok["method"] == method]
        row: dict[str, Any] = {"method": method, "seeds": len(part)}
        for col in [*[f"miou_{f:g}" for f in fractions], "cloud_acc"]:
            v = pd.to_numeric(part[col], errors="coerce")
            row[f"{col}_mean"] = v.mean()
            row[f"{col}_std"] = v.std(ddof=1) if len(v) > 1 else np.nan
        row["epochs_mean"] = pd.to_numeric(part["epochs"], errors="coerce").mean()
        row["train_s_mean"] = pd.to_numeric(part["train_seconds"], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean: float, std: float) -> str:
    if not np.isfinite(mean):
        return ""
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def markdown(summary: Any, fractions: list[float], header: str) -> str:
    cols = [f"mIoU {f:.0%}" for f in fractions] + ["cloud acc."]
    lines = [header, "", "| method | seeds | " + " | ".join(cols) + " | epochs | train s |",
             "| ------ | ----: | " + " | ".join("---:" for _ in cols) + " | ---: | ---: |"]
    for r in summary.to_dict("records"):
        cells = [_pm(r[f"miou_{f:g}_mean"], r[f"miou_{f:g}_std"]) for f in fractions]
        cells.append(_pm(r["cloud_acc_mean"], r["cloud_acc_std"]))
        lines.append(f"| {r['method']} | {r['seeds']} | " + " | ".join(cells)
                     + f" | {r['epochs_mean']:.1f} | {r['train_s_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(summary: Any, fractions: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medcl.io.atomic import save_figure

    x = np.arange(len(summary))
    width = 0.8 / len(fractions)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(summary) + 1.5), 3.2))
    for k, f in enumerate(fractions):
        ax.bar(x + (k - (len(fractions) - 1) / 2) * width, summary[f"miou_{f:g}_mean"], width,
               yerr=summary[f"miou_{f:g}_std"].fillna(0.0), capsize=3, label=f"{f:.0%} labels")
    ax.set_xticks(x, summary["method"], rotation=20, ha="right")
    ax.set_ylabel("held-out mIoU (linear probe)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def compare_run(out: Path, base: PointsConfig, *, methods: list[str] | None = None,
                seeds: list[int] | None = None, budget_seconds: float | None = None,
                progress: bool = True, shard: Any = None) -> str:
    """Run (or resume) a comparison into ``out``; return ``compare.md``'s text. Units train
    ``base.epochs`` epochs, or an equal share of ``budget_seconds`` when given."""
    from medcl.io import RunFolder
    from medcl.io.atomic import write_text
    from medcl.io.units import check_signature, failed_message, run_units

    methods = list(methods) if methods else list(METHODS)
    bad = [m for m in methods if m not in METHODS]
    if bad or len(set(methods)) < len(methods):
        raise ConfigError(f"--methods {','.join(methods)} names an unknown method or one twice",
                          fix=f"give distinct methods from {', '.join(METHODS)}")
    seeds = [0, 1, 2] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) < len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {seeds} must be distinct non-negative integers",
                          fix="give e.g. --seeds 0,1,2")
    base.check()
    fractions = list(base.fractions)
    per_unit = None if budget_seconds is None else budget_seconds / (len(methods) * len(seeds))
    data_cache: dict[int, Any] = {}

    def sets(seed: int):
        if seed not in data_cache:
            cfg = replace(base, seed=seed)
            cs = load_clouds(base.data, n_scenes=base.scenes, seed=seed)
            tr, te = split_clouds(cs, cfg)
            add_segments(tr)
            add_segments(te)
            data_cache.clear()
            data_cache[seed] = (tr, te)
        return data_cache[seed]

    probe_set = sets(seeds[0])
    if probe_set[0].classes is None:
        raise ConfigError(f"{base.data} has no per-point labels; compare scores by probes",
                          fix="give labelled clouds or --data scenes")

    def work(key: dict[str, Any], _: Any) -> list[dict[str, Any]]:
        seed = int(key["seed"])
        cfg = replace(base, method=key["method"] if key["method"] != BASELINE else "fac",
                      seed=seed)
        tr, te = sets(seed)
        if key["method"] == BASELINE:
            from medcl.contrastive.engine import seed_everything

            seed_everything(seed)
            encoder = build(replace(cfg, method="pointcontrast")).encoder
            return [{"epochs": 0, "train_seconds": 0.0, "final_loss": None,
                     **probe_rows(probe(encoder, tr, te, cfg), fractions)}]
        trained = train(cfg, tr, budget_seconds=per_unit, progress=False)
        return [{"epochs": len(trained.history), "train_seconds": round(trained.seconds, 3),
                 "final_loss": trained.history[-1]["loss"],
                 **probe_rows(probe(trained.model.encoder, tr, te, cfg), fractions)}]

    signature = {k: v for k, v in asdict(base).items() if k not in ("method", "seed")}
    signature["budget_seconds_per_unit"] = per_unit
    out = Path(out)
    check_signature(out / UNITS, signature)
    folder = RunFolder.create(out)
    folder.write_config(base, extra={"command": "medcl core points compare",
                                     "methods": methods, "seeds": seeds,
                                     "budget_seconds": budget_seconds})
    budget = (f"{per_unit:.0f} s of training per method and seed" if per_unit is not None
              else f"{base.epochs} epochs per method and seed")
    header = (f"# Point methods compared on {base.data}\n\n"
              f"Backbone {base.backbone}, {base.points} points per view, {base.batch_size} "
              f"clouds per step, {budget}; the same views, segments and probes for all. "
              "Per-point linear-probe mIoU on held-out clouds at each fraction of the training "
              "clouds' labelled points, and cloud accuracy from pooled features; mean ± std "
              f"over seeds, as measured on this machine ({os.cpu_count()} CPU cores). "
              f"{BASELINE}: the same encoder untrained.")

    def on_table(table: Any) -> None:
        summary = summarise(table, fractions)
        folder.write_table("compare", summary)
        write_text(out / "compare.md", markdown(summary, fractions, header))
        if len(summary):
            _plot(summary, fractions, out / "compare.png")

    units = [({"method": m, "seed": s}, None) for s in seeds for m in [BASELINE, *methods]]
    result = run_units(units, work, out / UNITS, columns=["method", "seed", *_columns(fractions)],
                       signature=signature, progress="lines" if progress else "quiet",
                       what="unit", shard=shard, on_table=on_table)
    on_table(result.table)
    message = failed_message(out / UNITS, ["method", "seed"])
    if message is not None:
        raise MedclError(message, path=out / UNITS)
    return (out / "compare.md").read_text(encoding="utf-8")

"""``medcl core image compare``: every method at an equal wall-clock budget, scored by probes.

One unit of work is one method trained with one seed (:func:`medcl.io.units.run_units`: rows in
``units.csv`` as each unit finishes, resume, progress lines, shards). Every unit uses the same
backbone, batch size, augmentation (:class:`~medcl.core.data.BatchAugment`) and probes, and
trains for the same wall-clock time: the budget of the whole comparison divided equally among
the units, in whole epochs (at least one), so a cheaper loss gets more epochs. Each method keeps
its paper's temperature and default number of views unless ``--views`` fixes them for all.
Probes: kNN (:func:`medcl.contrastive.probe.knn_accuracy`, k = 20, cosine) and a logistic-
regression linear probe on the frozen encoder's features, fit on the seed's stratified 70%
training split (the images the methods trained on) and scored on the other 30%.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from medcl.io.errors import ConfigError, MedclError

from .config import ImageConfig
from .data import ImageSet, load_data, split
from .recipes import available, get_recipe
from .train import check_labels, data_record, probe, resolve, train

UNITS = "units.csv"
RESULT_COLUMNS = ["epochs", "train_seconds", "final_loss", "knn", "linear"]
BASELINE = "random-init"
"""The reference row: the same encoder, untrained (same seed, same probes)."""


def _baseline(base: ImageConfig, data: ImageSet, seed: int) -> list[dict[str, Any]]:
    from medcl.contrastive.engine import seed_everything

    from .model import build_backbone

    seed_everything(seed)
    encoder = build_backbone(base.backbone, data.channels, base.width)
    tr, te = split(data, base.test_size, seed)
    return [{"epochs": 0, "train_seconds": 0.0, "final_loss": None,
             **probe(encoder, data, tr, te, base.knn_k)}]


def _unit_work(base: ImageConfig, data: ImageSet, root: Path, budget: float | None):
    def work(key: dict[str, Any], _: Any) -> list[dict[str, Any]]:
        if key["method"] == BASELINE:
            return _baseline(base, data, int(key["seed"]))
        recipe = get_recipe(key["method"])
        cfg = resolve(replace(base, method=key["method"], seed=int(key["seed"])), recipe)
        tr, te = split(data, cfg.test_size, cfg.seed)
        unit_dir = root / "units" / f"{key['method']}-seed{key['seed']}"
        if unit_dir.exists():  # an interrupted unit starts again from scratch
            shutil.rmtree(unit_dir)
        unit_dir.mkdir(parents=True)
        assert data.labels is not None and data.classes is not None
        trained = train(cfg, recipe, data.images[tr], data.labels[tr], len(data.classes),
                        unit_dir, budget_seconds=budget, progress=False)
        shutil.rmtree(unit_dir / "checkpoints", ignore_errors=True)  # metrics.csv stays
        scores = probe(trained.model.encoder, data, tr, te, cfg.knn_k)
        return [{"epochs": len(trained.history), "train_seconds": round(trained.seconds, 3),
                 "final_loss": trained.history[-1]["loss"], **scores}]

    return work


def summarise(table: Any) -> Any:
    """Mean and standard deviation (over seeds, ddof 1) per method, in the table's order."""
    import pandas as pd

    ok = table[table["status"] == "ok"].copy()
    rows = []
    for method in dict.fromkeys(table["method"]):
        part = ok[ok["method"] == method]
        row: dict[str, Any] = {"method": method, "seeds": len(part)}
        for col in ("knn", "linear"):
            values = pd.to_numeric(part[col], errors="coerce")
            row[f"{col}_mean"] = values.mean()
            row[f"{col}_std"] = values.std(ddof=1) if len(values) > 1 else np.nan
        row["epochs_mean"] = pd.to_numeric(part["epochs"], errors="coerce").mean()
        row["train_s_mean"] = pd.to_numeric(part["train_seconds"], errors="coerce").mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(summary: Any, header: str) -> str:
    lines = [header, "", "| method | seeds | kNN acc. | linear acc. | epochs | train s |",
             "| ------ | ----: | -------: | ----------: | -----: | ------: |"]

    def pm(mean: float, std: float) -> str:
        if not np.isfinite(mean):
            return ""
        return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"

    for r in summary.to_dict("records"):
        lines.append(f"| {r['method']} | {r['seeds']} | {pm(r['knn_mean'], r['knn_std'])} | "
                     f"{pm(r['linear_mean'], r['linear_std'])} | {r['epochs_mean']:.1f} | "
                     f"{r['train_s_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def _plot(summary: Any, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from medcl.io.atomic import save_figure

    x = np.arange(len(summary))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(summary) + 1.5), 3.2))
    for k, (col, label) in enumerate((("knn", "kNN"), ("linear", "linear probe"))):
        ax.bar(x + (k - 0.5) * 0.38, summary[f"{col}_mean"], 0.38,
               yerr=summary[f"{col}_std"].fillna(0.0), capsize=3, label=label)
    ax.set_xticks(x, summary["method"], rotation=30, ha="right")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_figure(path, fig)
    plt.close(fig)


def compare_run(out: Path, base: ImageConfig, *, methods: list[str] | None = None,
                seeds: list[int] | None = None, budget_seconds: float | None = 60.0,
                epochs: int | None = None, progress: bool = True, shard: Any = None) -> str:
    """Run (or resume) a comparison into ``out``; return ``compare.md``'s text.

    Parameters
    ----------
    out : path
        Run folder: ``config.yaml``, ``units.csv`` (one row per method x seed),
        ``units/<method>-seed<k>/metrics.csv`` (each unit's training log), ``compare.csv``,
        ``compare.md``, ``compare.png``.
    base : ImageConfig
        Settings shared by every unit (data, backbone, batch size, views, ...).
    methods : list of str, optional
        Default: every installed method (those needing labels included).
    seeds : list of int
        Default ``[0, 1, 2]``.
    budget_seconds : float or None
        Training wall-clock budget of the whole comparison, divided equally among the units.
    epochs : int, optional
        Instead of a budget, train every unit this many epochs (the demo's and the tests').

    Raises
    ------
    ConfigError
        Unknown or unavailable method, unlabelled data, bad seeds or budget, or ``out`` holding a
        comparison of other inputs.
    MedclError
        Some unit failed (after the others finished); rerunning retries it.
    """
    from medcl.io import RunFolder
    from medcl.io.atomic import write_text
    from medcl.io.units import check_signature, failed_message, run_units

    methods = list(methods) if methods else available()
    if len(set(methods)) < len(methods):
        raise ConfigError(f"--methods {','.join(methods)} names a method twice",
                          fix="give each method once")
    recipes = [get_recipe(m, flag="--methods") for m in methods]
    seeds = [0, 1, 2] if seeds is None else list(seeds)
    if not seeds or len(set(seeds)) < len(seeds) or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds {seeds} must be distinct non-negative integers",
                          fix="give e.g. --seeds 0,1,2")
    if epochs is None and (budget_seconds is None or budget_seconds <= 0):
        raise ConfigError("--budget-minutes must be > 0", fix="give e.g. --budget-minutes 1")
    data = load_data(base.data, labels_csv=base.labels, image_size=base.image_size)
    if data.labels is None or data.classes is None or len(data.classes) < 2:
        raise ConfigError(f"{data.source} has no labels; compare scores methods by probes",
                          fix="give labelled data: subfolders as classes or --labels")
    for recipe in recipes:
        check_labels(recipe, data)
    n_units = len(methods) * len(seeds)
    per_unit = None if epochs is not None else float(budget_seconds) / n_units
    if epochs is not None:
        base = replace(base, epochs=int(epochs))
    signature = {"data": data_record(data), "labels": base.labels, "backbone": base.backbone,
                 "width": base.width, "batch_size": base.batch_size, "views": base.views,
                 "lr": base.lr, "weight_decay": base.weight_decay, "proj_dim": base.proj_dim,
                 "test_size": base.test_size, "knn_k": base.knn_k,
                 "budget_seconds_per_unit": per_unit,
                 "epochs": base.epochs if per_unit is None else None}
    out = Path(out)
    check_signature(out / UNITS, signature)
    folder = RunFolder.create(out)
    folder.write_config(base, extra={"command": "medcl core image compare", "methods": methods,
                                     "seeds": seeds, "budget_seconds": budget_seconds,
                                     "budget_seconds_per_unit": per_unit,
                                     "data_record": data_record(data)})
    budget_text = (f"{per_unit:.1f} s of training per method and seed (budget "
                   f"{budget_seconds / 60:.2g} min over the {n_units} method x seed units; "
                   "whole epochs, at least one, so a unit may overrun a tiny budget)"
                   if per_unit is not None else f"{base.epochs} epochs per method and seed")
    header = (f"# Image methods compared on {data.source}\n\n"
              f"Backbone {base.backbone}, batch {base.batch_size}, {budget_text}; same "
              "augmentations and probes for all (kNN: cosine, k = "
              f"{base.knn_k}; linear: logistic regression), on a stratified "
              f"{1 - base.test_size:.0%}/{base.test_size:.0%} split per seed. Accuracy on the "
              "held-out images, mean ± std over seeds, as measured on this machine "
              f"({os.cpu_count()} CPU cores; wall-clock budgets depend on its load). "
              "supcon and hydra use the training labels; the others do not. "
              f"{BASELINE}: the same encoder untrained, for reference.")

    def on_table(table: Any) -> None:
        summary = summarise(table)
        folder.write_table("compare", summary)
        write_text(out / "compare.md", _markdown(summary, header))
        if len(summary):
            _plot(summary, out / "compare.png")

    units = [({"method": m, "seed": s}, None) for m in [BASELINE, *methods] for s in seeds]
    result = run_units(units, _unit_work(base, data, out, per_unit), out / UNITS,
                       columns=["method", "seed", *RESULT_COLUMNS], signature=signature,
                       progress="lines" if progress else "quiet", what="unit", shard=shard,
                       on_table=on_table)
    on_table(result.table)
    message = failed_message(out / UNITS, ["method", "seed"])
    if message is not None:
        raise MedclError(message, path=out / UNITS)
    return (out / "compare.md").read_text(encoding="utf-8")

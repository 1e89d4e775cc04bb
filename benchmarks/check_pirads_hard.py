"""PI-RADS zones beyond the easy phantoms: single-path UNet vs dual-path stage 1 vs stage 2,
trained on easy phantoms and scored on the held-out hard family, over several seeds.

The easy phantoms (:func:`medcl.pirads.phantom.make_phantom`, ``family="easy"``) give Dice
0.93-0.98 for every method, so they cannot tell the methods apart (issue 12, "check beyond
phantoms"). The hard family (``family="hard"``: pear-shaped, curved, asymmetric glands, off-centre
in a larger field of view at another voxel size, stronger bias field and noise, partial volume
across the 3 mm slices, oblique slices) is never trained on here: it measures how each method
carries over to scans unlike its training data.

Each seed is one unit of :func:`medcl.io.units.run_units` (rows written as it finishes, a rerun of
the same command resumes, ``--shard K/N`` splits the seeds over processes): ``--n-train`` easy
training phantoms (phantom seeds ``1000 * seed + i``) and, with ``--train-family hard``, hard ones
instead (seeds ``1000 * seed + 500 + i``, disjoint from the test seeds); the demo's small config
(filters 8-64, crop 96 x 96 x 24, batch 2, Adam lr 3e-3; ``--epochs`` supervised epochs, then
``--cotrain-epochs`` of co-training), trained with the app's public training functions
(:func:`medcl.pirads.train.load_cases`, :func:`~medcl.pirads.train.train_dual` with
``keep_stage1=True``, :func:`~medcl.pirads.train.train_single`); the dual path is trained once
and scored after stage 1 (a copy) and after stage 2; the UNet gets both budgets. Every model is
scored with :func:`medcl.pirads.infer.predict_zones` and :func:`medcl.pirads.metrics.evaluate_cases`
on the same ``--n-test`` hard phantoms (seeds 90000..) and, unless ``--no-easy``, on
``--n-test`` easy held-out phantoms (seeds 80000..) for comparison. MASD / HD95 count a missed or
spurious zone at the field-of-view diagonal (``masd``, ``hd95``); ``*_present`` average only the
cases that have the zone in both maps; ``missed`` is the number of test cases whose truth has the
zone and whose prediction does not.

Outputs in ``--out``: ``units.csv`` (per seed x test set x method x zone: means over the test
cases), ``results.csv`` and ``results.md`` (mean ± std over seeds; rebuilt after every seed), the
phantoms and each seed's per-case tables (``seed<S>/cases.csv``).

Run (CPU, one thread; about 10 minutes per seed on a loaded 2-core machine):
``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/check_pirads_hard.py --out runs/pirads_hard
[--seeds 0,1,2] [--epochs 10] [--cotrain-epochs 2] [--n-train 8] [--n-test 6]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

METHODS = ("single-path UNet", "dual-path stage 1", "dual-path stage 2")
METRICS = ("dice", "masd", "hd95", "masd_present", "hd95_present")
UNIT_COLUMNS = ["seed", "test_set", "method", "zone", "zone_name", *METRICS, "missed",
                "spurious", "n_cases", "train_s", "status", "error"]


def _config(args: argparse.Namespace, seed: int):
    from medcl.pirads.config import PiradsConfig

    # the demo's small config (medcl.pirads.demo), with this unit's seed
    return PiradsConfig(epochs=args.epochs, cotrain_epochs=args.cotrain_epochs,
                        filters=[8, 16, 32, 32, 64], crop=[96, 96, 24], batch_size=2, lr=3e-3,
                        seed=seed)


def _phantoms(out: Path, n: int, first: int, family: str) -> tuple[Path, Path]:
    """Write (once) ``n`` phantoms of ``family`` with seeds ``first..`` into ``out``."""
    from medcl.pirads.phantom import write_phantoms

    images, labels = out / "images", out / "labels"
    done = images.is_dir() and len(list(images.glob("*.nii.gz"))) == n \
        and labels.is_dir() and len(list(labels.glob("*.nii.gz"))) == n
    if not done:
        write_phantoms(out, n=n, seed=first, family=family)
    return images, labels


def _per_method(cases: pd.DataFrame) -> list[dict]:
    """Means over the test cases of one seed, per method and zone, and the miss counts."""
    rows = []
    ok = cases[cases["status"] == "ok"]
    for (method, zone), grp in ok.groupby(["method", "zone"], sort=False):
        row = {"method": method, "zone": int(zone), "zone_name": grp["zone_name"].iloc[0],
               "n_cases": int(len(grp))}
        for metric in METRICS:
            row[metric] = float(pd.to_numeric(grp[metric], errors="coerce").mean())
        for flag in ("missed", "spurious"):
            row[flag] = int(grp[flag].map(lambda v: str(v).lower() in ("true", "1")).sum())
        rows.append(row)
    return rows


def run_seed(args: argparse.Namespace, seed: int, out: Path, tests: dict) -> list[dict]:
    """Train the three models of one seed and score them on every test set."""
    import torch

    from medcl.pirads.infer import predict_zones
    from medcl.pirads.metrics import evaluate_cases
    from medcl.pirads.train import list_cases, load_cases, train_dual, train_single

    torch.manual_seed(seed)
    cfg = _config(args, seed)
    first = 1000 * seed + (500 if args.train_family == "hard" else 0)
    images, labels = _phantoms(out / "data" / f"train_seed{seed}", args.n_train, first,
                               args.train_family)
    x, y = load_cases(cfg, list_cases(images, labels), with_labels=True)
    start = time.perf_counter()
    dual, hist = train_dual(cfg, x, y, None, None, keep_stage1=True)
    dual_s = time.perf_counter() - start
    stage1_s = sum(r.get("seconds", 0.0) for r in hist["stage1"]) or float("nan")
    start = time.perf_counter()
    unet, _ = train_single(cfg, x, y, None)
    unet_s = time.perf_counter() - start
    models = {METHODS[0]: (unet, unet_s), METHODS[1]: (hist["stage1_model"], stage1_s),
              METHODS[2]: (dual, dual_s)}
    rows = []
    for test_set, (t_images, t_labels) in tests.items():
        pairs = list_cases(t_images, t_labels)
        table = None
        for method, (model, _) in models.items():
            table = evaluate_cases(pairs, lambda v, m=model: predict_zones(m, cfg, v),
                                   out / f"seed{seed}" / test_set, method=method,
                                   progress="quiet")
        for row in _per_method(table):
            rows.append({"test_set": test_set, **row, "train_s": models[row["method"]][1]})
    return rows


def summarise(units: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std over seeds of the per-seed means, per test set x method x zone."""
    ok = units[units["status"] == "ok"]
    out = []
    for (test_set, zone_name, method), grp in ok.groupby(["test_set", "zone_name", "method"],
                                                         sort=False):
        row = {"test_set": test_set, "zone": zone_name, "method": method,
               "seeds": int(grp["seed"].nunique())}
        for metric in (*METRICS, "missed"):
            v = pd.to_numeric(grp[metric], errors="coerce").dropna()
            mean = float(v.mean()) if len(v) else float("nan")
            std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
            fmt = "{:.3f}" if metric == "dice" else "{:.1f}" if metric == "missed" else "{:.2f}"
            row[metric] = "n/a" if np.isnan(mean) else f"{fmt.format(mean)} ± {fmt.format(std)}"
        row["n_cases"] = int(pd.to_numeric(grp["n_cases"]).max())
        out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    order = {m: i for i, m in enumerate(METHODS)}
    zones = {z: i for i, z in enumerate(("PZ", "TZ", "DPU", "AFS"))}
    return table.sort_values(
        ["test_set", "zone", "method"],
        key=lambda c: c.map(zones) if c.name == "zone"
        else c.map(order) if c.name == "method" else c.map({"hard": 0, "easy": 1}),
        kind="stable").reset_index(drop=True)


def markdown(summary: pd.DataFrame, args: argparse.Namespace) -> str:
    """The results table as Markdown, one block per test set."""
    lines = ["# PI-RADS zones: easy-trained models on held-out phantoms\n",
             f"Trained on {args.n_train} {args.train_family} phantoms per seed (demo config: "
             f"filters 8-64, crop 96x96x24, {args.epochs} supervised + {args.cotrain_epochs} "
             f"co-training epochs; the UNet {args.epochs + args.cotrain_epochs}); scored on "
             f"{args.n_test} phantoms per test set. Mean ± std over seeds of the per-seed mean "
             "over cases. MASD / HD95 (mm): `masd`, `hd95` count a missed or spurious zone at the "
             "field-of-view diagonal; `present` columns average only cases with the zone in both "
             "maps; `missed`: test cases per seed whose prediction lacks a zone of the truth.\n"]
    for test_set, block in summary.groupby("test_set", sort=False):
        seeds = int(block["seeds"].max())
        lines.append(f"\n## {test_set} phantoms ({seeds} seed{'s' if seeds != 1 else ''})\n")
        lines.append("| zone | method | Dice | MASD | HD95 | MASD present | HD95 present | "
                     "missed |\n|---|---|---|---|---|---|---|---|")
        for r in block.itertuples():
            lines.append(f"| {r.zone} | {r.method} | {r.dice} | {r.masd} | {r.hd95} | "
                         f"{r.masd_present} | {r.hd95_present} | {r.missed} |")
        means = block.groupby("method", sort=False)["dice_mean"].mean()
        lines.append("\nMean Dice over the four zones: " + ", ".join(
            f"{m} {v:.3f}" for m, v in means.items()) + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="Folder of the results.")
    parser.add_argument("--seeds", default="0,1,2", help="Comma-separated training seeds.")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cotrain-epochs", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=8)
    parser.add_argument("--n-test", type=int, default=6)
    parser.add_argument("--train-family", choices=("easy", "hard"), default="easy")
    parser.add_argument("--no-easy", action="store_true",
                        help="Score on the hard test set only.")
    parser.add_argument("--shard", default=None, help="K/N: this process's share of the seeds.")
    parser.add_argument("--progress", default="lines",
                        choices=("auto", "bar", "lines", "quiet"))
    args = parser.parse_args(argv)
    from medcl.io import ConfigError, write_csv, write_text
    from medcl.io.units import parse_shard, run_units

    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        parser.error(f"--seeds {args.seeds!r}: give comma-separated integers, e.g. 0,1,2")
    if min(args.epochs, args.n_train, args.n_test) < 1 or args.cotrain_epochs < 0:
        parser.error("--epochs, --n-train and --n-test need values >= 1 and --cotrain-epochs "
                     ">= 0")
    out = args.out
    tests = {"hard": _phantoms(out / "data" / "test_hard", args.n_test, 90000, "hard")}
    if not args.no_easy:
        tests["easy"] = _phantoms(out / "data" / "test_easy", args.n_test, 80000, "easy")
    signature = {"epochs": args.epochs, "cotrain_epochs": args.cotrain_epochs,
                 "n_train": args.n_train, "n_test": args.n_test,
                 "train_family": args.train_family, "test_sets": sorted(tests),
                 "config": "demo: filters 8-64, crop 96x96x24, batch 2, lr 3e-3"}

    def rebuild(table: pd.DataFrame) -> None:
        summary = summarise(table)
        if not summary.empty:
            write_csv(out / "results.csv", summary)
            write_text(out / "results.md", markdown(summary, args))

    try:
        result = run_units([({"seed": str(s)}, s) for s in seeds],
                           lambda key, s: run_seed(args, s, out, tests), out / "units.csv",
                           columns=UNIT_COLUMNS, signature=signature, progress=args.progress,
                           what="seed", shard=parse_shard(args.shard), on_table=rebuild)
    except ConfigError as err:  # another run's table in --out, a bad --shard, a held lock
        print(f"error: {err}", file=sys.stderr)
        return 2
    rebuild(result.table)
    if (out / "results.md").exists():
        print((out / "results.md").read_text())
    return 1 if result.any_failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The core's sequence methods on their offline ``synth`` data, mean +- std over seeds.

Two tables, each labelled with its protocol:

* **skeleton** — HiCLR vs plain MoCo: both pretrain the same tiny ST-GCN for the same epochs
  on the training split (70 %) of the stick-figure generator; the frozen features are scored
  by a linear probe (all training labels) and the encoder is fine-tuned with 10 % of the
  labels; step time = pretraining wall time / optimiser steps.
* **rec** — SASRec vs CL4SRec vs MCLRec on latent-cluster Markov sessions: same data, encoder,
  epochs and batches; the best-validation epoch is scored on the leave-one-out test items by
  HR@10 and NDCG@10 over the full item ranking. The oracle row ranks items by the generator's
  true next-item probabilities (the ceiling).

Writes ``<out>/skeleton_runs.csv``, ``skeleton.csv``/``.md``, ``rec_runs.csv``,
``rec.csv``/``.md``. One thread (the figures are per-step CPU times)::

    python benchmarks/bench_core_sequences.py --seeds 0,1,2 --out bench_core_sequences
    python benchmarks/bench_core_sequences.py --only rec --rec-epochs 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medcl.io import to_markdown_table, write_csv, write_text


def skeleton_run(method: str, seed: int, args: argparse.Namespace) -> dict:
    from medcl.contrastive.probe import linear_probe_accuracy
    from medcl.core.skeleton_data import synth
    from medcl.core.skeleton_train import (
        SkeletonConfig,
        embed,
        finetune,
        label_subset,
        resolve,
        split,
        train,
    )

    data = synth(n_per_class=args.per_class, frames=args.frames, seed=seed)
    tr, te = split(data, 0.3, seed)
    cfg = resolve(SkeletonConfig(method=method, depth="tiny", hidden=args.hidden,
                                 out_dim=args.out_dim, epochs=args.skeleton_epochs,
                                 batch_size=args.batch, momentum=args.momentum,
                                 frames=args.frames, seed=seed), len(tr))
    t0 = time.perf_counter()
    trained = train(cfg, data.x[tr], data.layout, None, progress=False)
    seconds = time.perf_counter() - t0
    steps = int(trained.history[-1]["step"])
    y = data.labels
    z = embed(trained.model.encoder, data.x)
    linear = linear_probe_accuracy(z[tr], y[tr], z[te], y[te])
    sub = tr[label_subset(y[tr], 0.1, seed)]
    clf, _ = finetune(trained.model.encoder, data.x[sub], y[sub], 5, data.layout.flip,
                      args.finetune_epochs, seed)
    with torch.no_grad():
        ft = float((clf(data.x[te]).argmax(1).numpy() == y[te]).mean())
    return {"method": method, "seed": seed, "linear": linear, "finetune_10pct": ft,
            "step_ms": 1000 * seconds / max(steps, 1), "pretrain_s": seconds,
            "final_loss": trained.history[-1]["loss"]}


def rec_runs(seed: int, args: argparse.Namespace) -> list[dict]:
    from medcl.core.rec_data import leave_one_out, oracle_ranks
    from medcl.core.rec_train import RecConfig, load_sequences, metrics_table, score, train

    rows = []
    for method in ("sasrec", "cl4srec", "mclrec"):
        cfg = RecConfig(method=method, epochs=args.rec_epochs, batch_size=128, hidden=32,
                        inner=64, max_len=20, dropout=0.2, attn_dropout=0.2, seed=seed,
                        synth_users=args.users, synth_items=args.items).resolved()
        seqs, truth = load_sequences("synth", cfg)
        split = leave_one_out(seqs.seqs, cfg.max_len)
        t0 = time.perf_counter()
        trained = train(cfg, seqs, split, progress=False)
        ranks = score(trained.encoder, split.test_inputs, split.test_targets, cfg.max_len)
        m = metrics_table(ranks, method)
        rows.append({"method": method, "seed": seed, "HR@10": m["HR@10"],
                     "NDCG@10": m["NDCG@10"], "step_ms": 1000 * trained.step_seconds,
                     "train_s": time.perf_counter() - t0})
        print(f"rec {method:8s} seed {seed}: HR@10 {m['HR@10']:.3f} NDCG@10 {m['NDCG@10']:.3f} "
              f"step {rows[-1]['step_ms']:.0f} ms", flush=True)
    o = metrics_table(oracle_ranks(truth, seqs, split.test_users, split.test_inputs,
                                   split.test_targets, seed), "oracle")
    rows.append({"method": "oracle", "seed": seed, "HR@10": o["HR@10"],
                 "NDCG@10": o["NDCG@10"], "step_ms": np.nan, "train_s": np.nan})
    return rows


def mean_std(raw: pd.DataFrame, columns: dict[str, str], digits: int = 3) -> pd.DataFrame:
    """One row per method: ``mean +- std`` over seeds of each column (renamed by ``columns``)."""
    out = {"method": []} | {label: [] for label in columns.values()}
    for method, group in raw.groupby("method", sort=False):
        out["method"].append(method)
        for col, label in columns.items():
            v = group[col].dropna()
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            out[label].append("-" if v.empty else f"{v.mean():.{digits}f} +- {sd:.{digits}f}")
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["skeleton", "rec"], default=None)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--skeleton-epochs", type=int, default=15)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--out-dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--momentum", type=float, default=0.99)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    ap.add_argument("--rec-epochs", type=int, default=6)
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--items", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path("bench_core_sequences"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import medcl.contrastive.engine  # noqa: F401  (imported here so no step time includes it)

    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)

    if args.only in (None, "skeleton"):
        rows = []
        for s in seeds:
            for m in ("hiclr", "moco"):
                rows.append(r := skeleton_run(m, s, args))
                print(f"skeleton {m:6s} seed {s}: linear {r['linear']:.3f} "
                      f"finetune10 {r['finetune_10pct']:.3f} step {r['step_ms']:.0f} ms",
                      flush=True)
        raw = pd.DataFrame(rows)
        table = mean_std(raw, {"linear": "linear", "finetune_10pct": "fine-tune 10 %"})
        table["step (ms)"] = [f"{raw[raw.method == m].step_ms.mean():.0f}" for m in table.method]
        write_csv(args.out / "skeleton_runs.csv", raw)
        write_csv(args.out / "skeleton.csv", table)
        md = (f"Skeleton, synth ({args.per_class} per class x 5 classes, {args.frames} frames), "
              f"tiny ST-GCN, {args.skeleton_epochs} pretraining epochs; linear probe on all "
              f"training labels, fine-tune on 10 %; 70/30 split; seeds {args.seeds}\n\n"
              + to_markdown_table(table))
        write_text(args.out / "skeleton.md", md + "\n")
        print(md)
        hiclr, moco = (raw[raw.method == m].step_ms.mean() for m in ("hiclr", "moco"))
        print(f"step time HiCLR / MoCo: {hiclr / moco:.2f}x\n")

    if args.only in (None, "rec"):
        raw = pd.DataFrame([r for s in seeds for r in rec_runs(s, args)])
        table = mean_std(raw, {"HR@10": "HR@10", "NDCG@10": "NDCG@10"})
        table["step (ms)"] = ["-" if np.isnan(v) else f"{v:.0f}" for v in
                              (raw[raw.method == m].step_ms.mean() for m in table.method)]
        write_csv(args.out / "rec_runs.csv", raw)
        write_csv(args.out / "rec.csv", table)
        md = (f"Sequential recommendation, synth ({args.users} users, {args.items} items), "
              f"{args.rec_epochs} epochs, best-validation epoch; leave-one-out test, full "
              f"ranking; seeds {args.seeds}\n\n" + to_markdown_table(table))
        write_text(args.out / "rec.md", md + "\n")
        print(md)


if __name__ == "__main__":
    main()

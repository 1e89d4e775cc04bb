"""HiCLR vs plain MoCo on ``synth`` skeletons: linear and 10 % fine-tune accuracy, step times.

Both methods pretrain the same ST-GCN encoder for the same number of epochs on the training
split of the stick-figure generator, then the frozen features are scored by a linear probe
(all training labels) and the encoder is fine-tuned with 10 % of the labels. Mean +- std over
seeds; the step time is the pretraining wall time divided by the optimiser steps.

    OMP_NUM_THREADS=1 python benchmarks/bench_skeleton.py --epochs 15 --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch


def run(method: str, seed: int, args: argparse.Namespace) -> dict:
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
                                 out_dim=args.out_dim, epochs=args.epochs,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=8)
    ap.add_argument("--out-dim", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--momentum", type=float, default=0.99)
    ap.add_argument("--finetune-epochs", type=int, default=15)
    ap.add_argument("--out", default="bench_skeleton")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for s in args.seeds.split(","):
        for m in ("hiclr", "moco"):
            rows.append(r := run(m, int(s), args))
            print(f"{r['method']:6s} seed {r['seed']}: linear {r['linear']:.3f} "
                  f"finetune10 {r['finetune_10pct']:.3f} step {r['step_ms']:.0f} ms",
                  flush=True)
    raw = pd.DataFrame(rows)
    agg = raw.groupby("method").agg(["mean", "std"])[["linear", "finetune_10pct", "step_ms"]]
    table = pd.DataFrame({
        "method": agg.index,
        "linear": [f"{m:.3f} +- {s:.3f}" for m, s in agg["linear"].values],
        "finetune 10 %": [f"{m:.3f} +- {s:.3f}" for m, s in agg["finetune_10pct"].values],
        "step (ms)": [f"{m:.0f} +- {s:.0f}" for m, s in agg["step_ms"].values]})
    from medcl.io.runs import to_markdown_table

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw.to_csv(out / "bench_skeleton_runs.csv", index=False)
    table.to_csv(out / "bench_skeleton.csv", index=False)
    md = to_markdown_table(table)
    (out / "bench_skeleton.md").write_text(md)
    print(md)
    print(f"ratio of step times hiclr / moco: "
          f"{agg['step_ms']['mean']['hiclr'] / agg['step_ms']['mean']['moco']:.2f}")


if __name__ == "__main__":
    main()

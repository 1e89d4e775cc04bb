"""SASRec vs CL4SRec vs MCLRec on ``synth`` (latent-cluster Markov sessions): test HR@10 and
NDCG@10 (full ranking), mean +- std over seeds, and the time of one training step.

Every method gets the same data, encoder, epochs and batches; the best-validation epoch is
scored on the test items. The oracle row ranks items by the generator's true next-item
probabilities (the ceiling). Writes ``<out>/bench_rec.csv`` and ``<out>/bench_rec.md``.

    OMP_NUM_THREADS=1 python benchmarks/bench_rec.py --epochs 6 --users 400 --out bench_rec
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from medcl.core.rec_data import leave_one_out, oracle_ranks
from medcl.core.rec_train import RecConfig, load_sequences, metrics_table, score, train
from medcl.io import to_markdown_table, write_csv, write_text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--users", type=int, default=400)
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", type=Path, default=Path("bench_rec"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for method in ("sasrec", "cl4srec", "mclrec"):
            cfg = RecConfig(method=method, epochs=args.epochs, batch_size=128, hidden=32,
                            inner=64, max_len=20, dropout=0.2, attn_dropout=0.2, seed=seed,
                            synth_users=args.users, synth_items=args.items).resolved()
            seqs, truth = load_sequences("synth", cfg)
            split = leave_one_out(seqs.seqs, cfg.max_len)
            t0 = time.perf_counter()
            trained = train(cfg, seqs, split, progress=False)
            ranks = score(trained.encoder, split.test_inputs, split.test_targets, cfg.max_len)
            m = metrics_table(ranks, method)
            rows.append({"method": method, "seed": seed, "HR@10": m["HR@10"],
                         "NDCG@10": m["NDCG@10"], "ms_per_step": 1000 * trained.step_seconds,
                         "train_s": time.perf_counter() - t0})
            print(rows[-1], flush=True)
        o = metrics_table(oracle_ranks(truth, seqs, split.test_users, split.test_inputs,
                                       split.test_targets, seed), "oracle")
        rows.append({"method": "oracle", "seed": seed, "HR@10": o["HR@10"],
                     "NDCG@10": o["NDCG@10"], "ms_per_step": np.nan, "train_s": np.nan})
    df = pd.DataFrame(rows)
    summary = df.groupby("method", sort=False).agg(
        HR10_mean=("HR@10", "mean"), HR10_std=("HR@10", "std"), NDCG10_mean=("NDCG@10", "mean"),
        NDCG10_std=("NDCG@10", "std"), ms_per_step=("ms_per_step", "mean")).reset_index()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "bench_rec.csv", df)
    table = to_markdown_table(summary, floatfmt=".4f")
    write_text(args.out / "bench_rec.md", f"# bench_rec (epochs {args.epochs}, users "
               f"{args.users}, items {args.items})\n\n" + table)
    print(table)


if __name__ == "__main__":
    main()

"""Graph methods (issue 14): GRACE's epoch time and peak memory vs graph size, POT's extra cost,
and a compare table on SBM and LFR.

Three tables, one run:

1. GRACE (2-layer GCN 32 -> 128 -> 64, projection 64, chunked kernel, chunk 1024) on
   planted-partition graphs of 1k, 10k and 100k nodes: seconds per epoch and peak memory.
   1k and 10k train full batch (one step per epoch); 100k trains in mini-batches of
   ``--batch`` seed nodes with sampled 2-hop neighbourhoods (fan-out 5, 5) and its epoch time is
   extrapolated from the first ``--steps`` batches (stated in the table).
2. POT's extra cost: the same epoch with and without ``--pot`` (goal <= 1.5x GRACE alone).
3. ``medcl core graph compare`` of grace, grace+pot, gcool, gcool+pot on ``sbm`` (400 nodes)
   and ``lfr`` (250 nodes), 3 seeds, ``--epochs`` epochs each: mean ± std.

Memory: each configuration in a fresh subprocess, peak resident-set growth (``VmHWM`` reset
through ``/proc/self/clear_refs``) over the state after building graph and model; on CUDA
``torch.cuda.max_memory_allocated``. Tables are printed and written to ``--out`` as
``bench_graph.csv`` / ``bench_graph.md`` (plus the compare folders).

Run: ``.venv/bin/python benchmarks/bench_graph.py [--quick] [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(n: int, pot: bool, batch: int | None, steps: int, device: str, threads: int) -> None:
    import torch

    from medcl.contrastive.graph import (
        GCN,
        ProjectionHead,
        drop_edges,
        grace_loss,
        mask_features,
        pot_regulariser,
    )
    from medcl.contrastive.graph.sampling import CSR, sample_subgraph
    from medcl.core.graph_data import _noisy_features, planted_partition

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ei, labels = planted_partition(n, 4, seed=0)
    x = _noisy_features(labels, torch.Generator().manual_seed(1))
    dev = torch.device(device)
    enc, head = GCN(32, 128, 64).to(dev), ProjectionHead(64, 64).to(dev)
    opt = torch.optim.Adam([*enc.parameters(), *head.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    csr = CSR.from_edge_index(ei, n) if batch else None

    def step(seeds):
        if seeds is None:
            xs, es, anchors = x, ei, None
        else:
            nodes, es = sample_subgraph(csr, seeds, [5, 5], gen)
            xs, anchors = x[nodes], torch.arange(len(seeds), device=dev)
        xs, es = xs.to(dev), es.to(dev)
        e1, e2 = drop_edges(es, 0.2), drop_edges(es, 0.4)
        z1, z2 = enc(mask_features(xs, 0.3), e1), enc(mask_features(xs, 0.4), e2)
        loss = grace_loss(head(z1), head(z2), 0.4, chunk_size=1024, anchor_index=anchors)
        if pot:
            loss = 0.6 * loss + 0.4 * pot_regulariser(enc, xs, es, [z2, z1], 0.4, anchors)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    batches = None if batch is None else list(torch.randperm(n, generator=gen).split(batch))
    step(None if batches is None else batches[0])  # warm-up
    sync()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    _reset_peak()
    base = _peak_rss_mb()
    times = []
    for k in range(steps):
        t0 = time.perf_counter()
        step(None if batches is None else batches[1 + k % (len(batches) - 1)])
        sync()
        times.append(time.perf_counter() - t0)
    per_step = statistics.median(times)
    per_epoch = per_step * (1 if batches is None else len(batches))
    peak = (torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda"
            else _peak_rss_mb() - base)
    print(json.dumps({"epoch_s": per_epoch, "step_s": per_step, "peak_mb": peak,
                      "batches": 1 if batches is None else len(batches)}))


def _run_child(n, pot, batch, steps, device, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--steps", str(steps), "--device",
           device, "--threads", str(threads)] + (["--pot"] if pot else []) + (
        ["--batch", str(batch)] if batch else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _md(title: str, header: list[str], rows: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 1k, 10k only; 2 seeds; 20 epochs")
    ap.add_argument("--child", type=int)
    ap.add_argument("--pot", action="store_true")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("bench_graph_out"))
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.pot, args.batch, args.steps, args.device, args.threads)
        return
    import pandas as pd
    import torch

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.device}, {args.threads} thread(s), float32; torch {torch.__version__}")
    sizes = [(1000, None), (10000, None)] + ([] if args.quick else [(100000, 512)])
    records, rows = [], []
    for n, batch in sizes:
        r = _run_child(n, False, batch, args.steps, args.device, args.threads)
        how = "full batch" if batch is None else (
            f"{r['batches']} batches of {batch} seeds, extrapolated from {args.steps}")
        rows.append([f"{n:,}", how, f"{r['epoch_s']:.2f}", f"{r['peak_mb']:.0f}"])
        records.append({"table": "size", "nodes": n, "mode": how, "epoch_s": r["epoch_s"],
                        "peak_mb": r["peak_mb"]})
    text = _md("GRACE epoch time and peak memory vs graph size (chunk 1024)",
               ["nodes", "mode", "epoch s", "peak MB"], rows)
    rows = []
    for n in (1000, 10000):
        g = _run_child(n, False, None, args.steps, args.device, args.threads)
        p = _run_child(n, True, None, args.steps, args.device, args.threads)
        rows.append([f"{n:,}", f"{g['epoch_s']:.3f}", f"{p['epoch_s']:.3f}",
                     f"{p['epoch_s'] / g['epoch_s']:.2f}x"])
        records.append({"table": "pot", "nodes": n, "epoch_s": g["epoch_s"],
                        "pot_epoch_s": p["epoch_s"], "ratio": p["epoch_s"] / g["epoch_s"]})
    text += "\n" + _md("POT's extra cost (full batch; goal <= 1.5x)",
                       ["nodes", "GRACE s/epoch", "GRACE+POT s/epoch", "ratio"], rows)
    print(text)
    from medcl.core.graph_compare import compare_run
    from medcl.core.graph_train import GraphConfig

    torch.set_num_threads(args.threads)
    seeds = [0, 1] if args.quick else [0, 1, 2]
    epochs = 20 if args.quick else args.epochs
    for data, nodes in (("sbm", 400), ("lfr", 250)):
        t0 = time.perf_counter()
        md = compare_run(out / f"compare_{data}",
                         GraphConfig(data=data, nodes=nodes, epochs=epochs),
                         ["grace", "grace+pot", "gcool", "gcool+pot"], seeds, progress=False)
        md = md.replace("# Graph methods", "### Graph methods", 1)
        text += f"\n{md}\n(whole comparison {time.perf_counter() - t0:.0f} s)\n"
        print(md)
    pd.DataFrame(records).to_csv(out / "bench_graph.csv", index=False)
    (out / "bench_graph.md").write_text(text, encoding="utf-8")
    print(f"tables: {out / 'bench_graph.md'}, {out / 'bench_graph.csv'}")


if __name__ == "__main__":
    main()

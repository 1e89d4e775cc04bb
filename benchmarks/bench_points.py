"""Point-cloud benchmarks of ``medcl core points``: chunked vs dense kNN, FAC vs PointContrast
step time, and the method comparison on generated scenes.

1. kNN (k = 16) of one cloud of N = 4k, 16k, 64k points: :func:`medcl.contrastive.points.knn`
   in blocks of 1024 query points vs the dense ``torch.cdist`` + ``topk`` baseline (the named
   baseline for the ratio). Each measurement runs in a fresh subprocess; peak memory is the
   growth of its maximum resident set. Dense at 64k (a 16 GiB distance matrix) is skipped.
2. One pretraining step (forward + backward + AdamW) of FAC and PointContrast, batch of 4
   clouds x 2 views x 1024 points, PointNet and DGCNN backbones (median of 3 after 1 warm-up).
3. ``medcl core points compare`` on ``scenes`` (PointNet, 1024 points, 12 training rooms,
   4 epochs per unit), seeds 0, 1, 2, linear-probe mIoU at 1 % and 10 % labels.

Tables are printed and written as CSV + Markdown to ``--out`` (default ``bench_points_out``).
Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_points.py [--quick]``.
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


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _knn_one(n: int, mode: str) -> None:
    import torch

    from medcl.contrastive.points import knn, knn_dense

    x = torch.rand(1, n, 3, generator=torch.Generator().manual_seed(0)) * 10
    before = _rss_mb()
    t0 = time.perf_counter()
    idx = knn(x, 16, chunk=1024) if mode == "chunked" else knn_dense(x, 16)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_mb": _rss_mb() - before,
                      "checksum": int(idx[0, :64].sum())}))


def bench_knn(sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        row: dict = {"points": n}
        for mode in ("dense", "chunked"):
            if mode == "dense" and n > 20_000:
                row[f"{mode}_s"] = row[f"{mode}_peak_mb"] = None
                continue
            proc = subprocess.run([sys.executable, __file__, "--knn-one", str(n), mode],
                                  capture_output=True, text=True)
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            row[f"{mode}_s"] = round(res["seconds"], 3)
            row[f"{mode}_peak_mb"] = round(res["peak_mb"], 1)
        rows.append(row)
    return rows


def bench_steps() -> list[dict]:
    import numpy as np
    import torch

    from medcl.core.points_data import make_scenes
    from medcl.core.points_train import PointsConfig, add_segments, build, make_batch

    cs = make_scenes(4)
    add_segments(cs)
    rows = []
    for backbone in ("pointnet", "dgcnn"):
        for method in ("fac", "pointcontrast"):
            cfg = PointsConfig(method=method, backbone=backbone, points=1024)
            torch.manual_seed(0)
            model = build(cfg)
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            batch = make_batch(cs.clouds, cfg, np.random.default_rng(0))
            times = []
            for _ in range(4):
                t0 = time.perf_counter()
                loss, _ = model(batch)
                opt.zero_grad()
                loss.backward()
                opt.step()
                times.append(time.perf_counter() - t0)
            rows.append({"backbone": backbone, "method": method,
                         "step_s": round(statistics.median(times[1:]), 3)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--knn-one", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true",
                        help="kNN at 4k and 16k only, compare with 1 seed and 2 epochs")
    parser.add_argument("--out", type=Path, default=Path("bench_points_out"))
    args = parser.parse_args()
    if args.knn_one:
        _knn_one(int(args.knn_one[0]), args.knn_one[1])
        return
    import pandas as pd

    from medcl.io import to_markdown_table
    from medcl.io.atomic import write_csv, write_text

    args.out.mkdir(parents=True, exist_ok=True)
    parts = []
    knn_rows = bench_knn([4096, 16384] if args.quick else [4096, 16384, 65536])
    for r in knn_rows:
        r["time_ratio_chunked_vs_dense"] = (round(r["chunked_s"] / r["dense_s"], 2)
                                            if r["dense_s"] else None)
    step_rows = bench_steps()
    for name, rows in (("knn", knn_rows), ("steps", step_rows)):
        df = pd.DataFrame(rows)
        write_csv(args.out / f"{name}.csv", df)
        md = to_markdown_table(df)
        parts += [f"## {name}", "", md, ""]
        print(md, "\n", flush=True)

    from medcl.core.points_compare import compare_run
    from medcl.core.points_train import PointsConfig

    base = PointsConfig(data="scenes", backbone="pointnet", points=1024, scenes=12,
                        epochs=2 if args.quick else 4, fractions=[0.01, 0.1])
    text = compare_run(args.out / "compare", base, seeds=[0] if args.quick else [0, 1, 2],
                       progress=True)
    print(text)
    parts += [text]
    write_text(args.out / "bench_points.md", "\n".join(parts))


if __name__ == "__main__":
    main()

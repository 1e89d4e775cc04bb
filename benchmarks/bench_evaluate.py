"""Scaling of ``medcl evaluate``: time vs number of cases (10, 40, 160 phantoms), 1 and 2 workers.

Each case is a NIfTI phantom pair in the MSD layout (:func:`medcl.io.evaluate.write_phantom_cases`,
``--size`` voxels a side) scored by the model-free ``THRESHOLD`` evaluator: read, check and
reorient the volumes, predict, Dice, save the report's arrays, rewrite ``cases.csv`` -- the
whole per-case path of the engine, no network. Every configuration evaluates into a fresh
folder; ``report.html`` is built once per run and timed separately. Goals (issue 19): time
linear in cases (``s/case`` flat), and the speed-up of 2 workers measured (expected below 2x on
a shared 2-core machine: the parent also merges and rewrites the table after every case).

Run::

    OMP_NUM_THREADS=1 python benchmarks/bench_evaluate.py --out runs/bench-evaluate

writes ``bench_evaluate.csv`` and ``bench_evaluate.md`` there and prints the table.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-evaluate"))
    parser.add_argument("--cases", default="10,40,160")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--size", type=int, default=48)
    args = parser.parse_args()

    import pandas as pd

    from medcl.io import get_card
    from medcl.io.atomic import write_text
    from medcl.io.evaluate import run_evaluation, write_phantom_cases
    from medcl.io.report import write_report
    from medcl.io.runs import to_markdown_table

    counts = [int(v) for v in args.cases.split(",")]
    workers = [int(v) for v in args.workers.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "data"
    if not (data / "imagesTr").is_dir() or \
            len(list((data / "imagesTr").iterdir())) < max(counts):
        shutil.rmtree(data, ignore_errors=True)
        write_phantom_cases(data, max(counts), size=args.size)
    card = get_card("msd_task09_spleen")
    warm = args.out / "eval_warmup"  # imports and first-call costs, not timed
    shutil.rmtree(warm, ignore_errors=True)
    run_evaluation(spec="medcl.io.evaluate:THRESHOLD", card=card, root=data, out=warm, limit=2,
                   progress="quiet")
    rows = []
    for n in counts:
        for w in workers:
            out = args.out / f"eval_n{n}_w{w}"
            shutil.rmtree(out, ignore_errors=True)
            t0 = time.perf_counter()
            res = run_evaluation(spec="medcl.io.evaluate:THRESHOLD", card=card, root=data,
                                 out=out, limit=n, workers=w, progress="quiet", report=False)
            seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            write_report(out)
            report_s = time.perf_counter() - t1
            assert res["ran"] == n and not res["failed"]
            rows.append({"cases": n, "workers": w, "seconds": round(seconds, 2),
                         "s_per_case": round(seconds / n, 4), "report_s": round(report_s, 2)})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    base = {r["cases"]: r["seconds"] for r in rows if r["workers"] == 1}
    table["speedup_vs_1"] = [round(base[c] / s, 2) if c in base else float("nan")
                             for c, s in zip(table.cases, table.seconds, strict=True)]
    table.to_csv(args.out / "bench_evaluate.csv", index=False)
    md = to_markdown_table(table, floatfmt=".3f")
    write_text(args.out / "bench_evaluate.md", md + "\n")
    print(md)


if __name__ == "__main__":
    main()

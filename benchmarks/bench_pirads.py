"""PI-RADS zones on the CPU: end-to-end inference time and peak memory for a 384 x 384 x 24 T2
volume, and per-zone Dice / MASD on held-out phantoms for the single-path UNet, dual-path stage 1
and dual-path stage 2 under the same training budget, in one run.

(a) ``segment`` end to end (reading, preprocessing, sliding window, inversion, writing zones and
    sectors) with the paper-sized network (filters 16-256, crop 168 x 168 x 32), untrained
    weights (speed does not depend on them); goal <= 10 s, timed on the second call. Peak memory:
    growth of the process's maximum resident set during the first call, and the total.
(b) 16 training and 10 held-out phantoms (96 x 96 x 24), CPU-sized filters 8-64; stage 1 for
    ``--epochs``, stage 2 for ``--cotrain-epochs`` more; the UNet gets both budgets.

Run: ``.venv/bin/python benchmarks/bench_pirads.py [--epochs 15] [--cotrain-epochs 5]``
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--cotrain-epochs", type=int, default=5)
    args = parser.parse_args()
    from pirads.config import PiradsConfig
    from pirads.infer import predict_zones, segment_file
    from pirads.metrics import evaluate_cases, summary_table
    from pirads.phantom import make_phantom, write_phantoms
    from pirads.train import build_model, list_cases, load_cases, train_dual, train_single

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t2, _, affine = make_phantom(0, shape=(384, 384, 24))
        nib.save(nib.Nifti1Image(t2, affine), tmp / "big.nii.gz")
        cfg = PiradsConfig()
        model = build_model(cfg, "dual").eval()
        before = _peak_mb()
        segment_file(model, cfg, tmp / "big.nii.gz", tmp / "warm.nii.gz")  # warm-up
        grown = _peak_mb() - before
        start = time.perf_counter()
        segment_file(model, cfg, tmp / "big.nii.gz", tmp / "z.nii.gz",
                     sectors=tmp / "s.nii.gz", report=tmp / "r.json")
        seconds = time.perf_counter() - start
        print(f"(a) segment 384x384x24, {torch.get_num_threads()} threads, paper-sized dual-path: "
              f"{seconds:.2f} s (goal <= 10 s); peak memory: the first call grew the process's "
              f"maximum resident set by {grown:.0f} MB, to {_peak_mb():.0f} MB in all")

        train_images, train_labels = write_phantoms(tmp / "train", n=16, seed=0)
        test_images, test_labels = write_phantoms(tmp / "test", n=10, seed=1000)
        small = PiradsConfig(epochs=args.epochs, cotrain_epochs=0, crop=[96, 96, 24],
                             filters=[8, 16, 32, 32, 64], batch_size=2)
        X, Y = load_cases(small, list_cases(train_images, train_labels), with_labels=True)
        rows = []
        for name, cot in (("dual-path stage 1", 0), ("dual-path stage 2", args.cotrain_epochs)):
            cfg_i = PiradsConfig(**{**small.__dict__, "cotrain_epochs": cot})
            start = time.perf_counter()
            model, _ = train_dual(cfg_i, X, Y, None, None)
            rows.append((name, cfg_i, model, time.perf_counter() - start))
        cfg_u = PiradsConfig(**{**small.__dict__, "cotrain_epochs": args.cotrain_epochs})
        start = time.perf_counter()
        unet, _ = train_single(cfg_u, X, Y, None)
        rows.append(("single-path UNet", cfg_u, unet, time.perf_counter() - start))

        cases = list_cases(test_images, test_labels)
        tables = []
        for name, cfg_i, model, train_s in rows:
            table = evaluate_cases(cases, lambda p, m=model, c=cfg_i: predict_zones(m, c, p),
                                   tmp / "eval", method=name)
            tables.append(summary_table(table[table.method == name]).assign(train_s=train_s))
        summary = pd.concat(tables)
        print(f"\n(b) 10 held-out phantoms; stage 1 {args.epochs} epochs, stage 2 +"
              f"{args.cotrain_epochs}; UNet {args.epochs + args.cotrain_epochs} epochs\n")
        print("| method | zone | Dice | MASD mm | train s |\n|---|---|---|---|---|")
        for r in summary.itertuples():
            print(f"| {r.method} | {r.zone_name} | {r.dice} | {r.masd} | {r.train_s:.0f} |")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

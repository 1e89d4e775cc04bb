"""PI-RADS zones on the CPU: end-to-end inference time and peak memory for a 384 x 384 x 24 T2
volume, and per-zone Dice / MASD on held-out phantoms for the single-path UNet, dual-path stage 1
and dual-path stage 2 under the same training budget, in one run.

(a) ``segment`` end to end (reading, preprocessing, sliding window, inversion, writing zones and
    sectors) with the paper-sized network (filters 16-256, crop 168 x 168 x 32), untrained
    weights (speed does not depend on them); goal <= 10 s, timed on the second call. Peak memory:
    growth of the process's maximum resident set during the first call, and the total.
(b) ``--n-train`` (16) training and ``--n-test`` (10) held-out phantoms (96 x 96 x 24, seeds
    0.. and 1000..), CPU-sized filters 8-64, Adam at ``--lr`` (3e-3 for every method); the
    dual path is trained once: stage 1 for ``--epochs``, then a copy is evaluated and stage 2
    goes on for ``--cotrain-epochs`` more; the UNet gets both budgets.

Run: ``.venv/bin/python benchmarks/bench_pirads.py [--epochs 15] [--cotrain-epochs 5]
[--lr 3e-3] [--n-train 16] [--n-test 10] [--skip-speed]``
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
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--n-train", type=int, default=16)
    parser.add_argument("--n-test", type=int, default=10)
    parser.add_argument("--skip-speed", action="store_true", help="Skip part (a).")
    args = parser.parse_args()
    from medcl.pirads.config import PiradsConfig
    from medcl.pirads.infer import predict_zones, segment_file
    from medcl.pirads.metrics import evaluate_cases, summary_table
    from medcl.pirads.phantom import make_phantom, write_phantoms
    from medcl.pirads.train import build_model, list_cases, load_cases, train_dual, train_single
    from medcl.pirads.zones import ZONES

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if not args.skip_speed:
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
            print(f"(a) segment 384x384x24, {torch.get_num_threads()} threads, paper-sized "
                  f"dual-path: {seconds:.2f} s (goal <= 10 s); peak memory: the first call grew "
                  f"the process's maximum resident set by {grown:.0f} MB, to {_peak_mb():.0f} MB "
                  "in all", flush=True)

        train_images, train_labels = write_phantoms(tmp / "train", n=args.n_train, seed=0)
        test_images, test_labels = write_phantoms(tmp / "test", n=args.n_test, seed=1000)
        cfg = PiradsConfig(epochs=args.epochs, cotrain_epochs=args.cotrain_epochs,
                           crop=[96, 96, 24], filters=[8, 16, 32, 32, 64], batch_size=2,
                           lr=args.lr)
        X, Y = load_cases(cfg, list_cases(train_images, train_labels), with_labels=True)
        start = time.perf_counter()
        dual, hist = train_dual(cfg, X, Y, None, None, keep_stage1=True)
        dual_s = time.perf_counter() - start
        stage1_s = sum(r.get("seconds", 0.0) for r in hist["stage1"]) or float("nan")
        start = time.perf_counter()
        unet, _ = train_single(cfg, X, Y, None)
        rows = [("single-path UNet", unet, time.perf_counter() - start),
                ("dual-path stage 1", hist["stage1_model"], stage1_s),
                ("dual-path stage 2", dual, dual_s)]

        cases = list_cases(test_images, test_labels)
        tables = []
        for name, model, train_s in rows:
            table = evaluate_cases(cases, lambda v, m=model: predict_zones(m, cfg, v),
                                   tmp / "eval", method=name)
            tables.append(summary_table(table[table.method == name]).assign(train_s=train_s))
        summary = pd.concat(tables)
        print(f"\n(b) {args.n_test} held-out phantoms; {args.n_train} training phantoms; "
              f"stage 1 {args.epochs} epochs, stage 2 +{args.cotrain_epochs}; UNet "
              f"{args.epochs + args.cotrain_epochs} epochs; lr {args.lr:g}; "
              f"{torch.get_num_threads()} threads\n")
        print("MASD / HD95 count a missed zone at the field-of-view diagonal; 'missed': cases "
              "whose prediction lacks a zone of the truth.\n")
        print("| method | zone | Dice | MASD mm | HD95 mm | missed | train s |\n"
              "|---|---|---|---|---|---|---|")
        for r in summary.itertuples():
            print(f"| {r.method} | {r.zone_name} | {r.dice} | {r.masd} | {r.hd95} | "
                  f"{r.n_missed} | {r.train_s:.0f} |")
        wide = summary.pivot(index="method", columns="zone_name", values="dice_mean")
        print(f"\nDice {' / '.join(ZONES.values())}:")
        for method, r in wide.iterrows():
            print(f"  {method}: " + " / ".join(f"{r[z]:.2f}" for z in ZONES.values()))


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()

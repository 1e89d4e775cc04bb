"""Low-level vision probe (issue 17): the nine tests of Cai et al. (CVPR 2025) on three encoders.

* ``sam-tiny-random``: a randomly initialised tiny SAM image encoder (segment-anything's
  ``ImageEncoderViT``, width 64, 4 blocks, 64 px input), behind SAM's preprocessing;
* ``cnn-random``: the core's small CNN backbone (3 blocks, width 16), random weights;
* ``cnn-simclr``: the same backbone after a short ``medcl core image pretrain --method simclr``
  on scikit-learn's digits (grey; the probe feeds it the Rec. 709 luma at 224 px).

The table gives per test the Spearman score (higher agrees with humans) and the RMSE of log10
thresholds/matches against the human references of ``medcl.contrastive.hvs.human``. It is a
functional comparison at a small grid, not a reproduction of the paper's numbers.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_hvs.py --out OUT
[--conditions 5 --ratios 5 --steps 6 --epochs 3]``; writes ``OUT/bench_hvs.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--conditions", type=int, default=5)
    ap.add_argument("--ratios", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import pandas as pd
    import torch

    from medcl.contrastive.backbones import SmallCNN
    from medcl.contrastive.hvs.adapter import DisplayAdapter
    from medcl.core.config import ImageConfig
    from medcl.core.encoder import load_encoder
    from medcl.core.hvs_encoders import sam_adapter, sam_image_encoder
    from medcl.core.hvs_runner import HVSConfig, run_hvs
    from medcl.core.train import pretrain_run
    from medcl.io import to_markdown_table, write_csv, write_text

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    run_dir = args.out / "cnn-simclr-run"
    if not (run_dir / "model.pt").is_file():
        pretrain_run(ImageConfig(method="simclr", data="digits", epochs=args.epochs, seed=0),
                     run_dir, progress=False)
    train_s = time.perf_counter() - t0
    torch.manual_seed(0)
    encoders = {
        "sam-tiny-random": sam_adapter(sam_image_encoder(embed_dim=64, depth=4, num_heads=4,
                                                         global_attn_indexes=(1, 3),
                                                         img_size=64)),
        "cnn-random": DisplayAdapter(SmallCNN(1, 16), channels=1).eval(),
        "cnn-simclr": load_encoder(str(run_dir)),
    }
    rows = []
    for name, enc in encoders.items():
        start = time.perf_counter()
        cfg = HVSConfig(encoder=name, conditions=args.conditions, ratios=args.ratios,
                        steps=args.steps)
        run_hvs(cfg, args.out / name, encoder=enc, progress=False)
        table = pd.read_csv(args.out / name / "hvs.csv")
        for _, r in table.iterrows():
            rows.append({"test": r["test"], "encoder": name, "spearman": r["spearman"],
                         "rmse_log10": r["rmse_log10"]})
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    long = pd.DataFrame(rows)
    wide = long.pivot(index="test", columns="encoder", values=["spearman", "rmse_log10"])
    wide.columns = [f"{enc} {metric}" for metric, enc in wide.columns]
    order = list(pd.unique(long["test"]))
    wide = wide.loc[order].reset_index()
    write_csv(args.out / "bench_hvs.csv", wide)
    md = to_markdown_table(wide)
    note = (f"\n\nGrid: {args.conditions} conditions x {args.ratios} ratios, {args.steps} "
            f"bisection steps; cnn-simclr pretrained {args.epochs} epochs on digits "
            f"({train_s:.0f} s incl. loading); total {time.perf_counter() - t0:.0f} s, "
            f"{args.threads} thread(s).\n")
    write_text(args.out / "bench_hvs.md", md + note)
    print(md + note)


if __name__ == "__main__":
    main()

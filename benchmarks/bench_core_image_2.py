"""The core's second image wave in one run (issue 17): BaCon, PCL-SR, the low-level vision probe.

Three tables, each printed as Markdown with its protocol, and written to ``--out``:

1. **Category discovery** (``gcd.csv``, ``gcd_runs.csv``): BaCon vs the GCD baseline and the
   SimGCD-style parametric baseline on ``digits-lt`` (scikit-learn's digits made long-tailed,
   known classes 0-4, half of each known class labelled) at imbalance 1, 10 and 100. All / Old /
   New accuracy (Hungarian map fitted on all unlabelled images, the "v2" protocol) on the
   unlabelled training images (transductive, as GCD), mean +- std over ``--seeds`` seeds (the
   seed draws the long-tailed subsample, the labelled half, the initialisation and the
   augmentations). Every method: the same small CNN, augmentations, AdamW, epochs.
2. **Super-resolution** (``sr.csv``): EDSR (``--sr-blocks`` x ``--sr-feats``) trained with
   PCL-SR's ``L1 + 5 x contrast`` vs L1 only (same network, steps, patches, seed), at x2 and x4,
   on HR crops of scikit-image's photographs (bicubic degradation); PSNR / SSIM
   (``skimage.metrics``) on the BT.601 Y channel with ``scale`` border pixels cropped, on the
   held-out images (chelsea, camera, coins, brick; 192 px centre crops), next to bicubic.
3. **Low-level vision probe** (``hvs.csv``): the nine tests of Cai et al. (CVPR 2025) on a
   randomly initialised tiny SAM image encoder, the same encoder after a short SimCLR
   pretraining, and the core's small CNN after SimCLR (``benchmarks/bench_hvs.py``'s encoders
   and table, imported).

Run (the numbers of the README)::

    OMP_NUM_THREADS=1 nice .venv/bin/python benchmarks/bench_core_image_2.py --out OUT

about 25 minutes of CPU on one thread (GCD ~10, SR ~10, HVS ~5); the three tables are
independent, so ``--only gcd``, ``--only sr`` and ``--only hvs`` may run as three processes
(each one thread) into three folders. ``--quick`` is a smoke run (two seeds, imbalance 10, a
few steps; under a minute). CPU, ``torch.set_num_threads(--threads)`` (1 by default).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_hvs  # noqa: E402  (a sibling script, not a package)

IMBALANCES = (1.0, 10.0, 100.0)
METHODS = ("bacon", "gcd", "simgcd")
KNOWN = "0,1,2,3,4"


def _pm(values) -> str:
    import numpy as np

    v = np.asarray(values, dtype=float) * 100
    return f"{v.mean():.1f} ± {v.std(ddof=1):.1f}" if len(v) > 1 else f"{v.mean():.1f}"


def bench_gcd(args: argparse.Namespace) -> tuple[str, list[dict], list[dict]]:
    """Table 1: rows per run and the mean +- std summary."""
    import pandas as pd

    from medcl.core.gcd_data import prepare
    from medcl.core.gcd_train import GCDConfig, score, train
    from medcl.io import to_markdown_table

    runs = []
    for imb in args.imbalances:
        for method in METHODS:
            for seed in range(args.seeds):
                cfg = GCDConfig(method=method, data="digits-lt", known=KNOWN, imbalance=imb,
                                epochs=args.gcd_epochs, seed=seed)
                data = prepare(cfg.data, cfg.known, imb, cfg.label_fraction, seed)
                start = time.perf_counter()
                model, _, _ = train(cfg, data, progress=False)
                acc = score(model, data, seed)
                runs.append({"imbalance": imb, "method": method, "seed": seed,
                             "n_images": len(data.images), "n_unlabelled": acc["n_images"],
                             "all": acc["all"], "old": acc["old"], "new": acc["new"],
                             "seconds": round(time.perf_counter() - start, 1)})
                print(f"gcd imbalance {imb:g} {method} seed {seed}: all {acc['all']:.3f} "
                      f"old {acc['old']:.3f} new {acc['new']:.3f} "
                      f"({runs[-1]['seconds']:.0f} s)", flush=True)
    summary = []
    for imb in args.imbalances:
        for method in METHODS:
            rs = [r for r in runs if r["imbalance"] == imb and r["method"] == method]
            summary.append({"imbalance": f"{imb:g}", "method": method,
                            "images (unlabelled)": f"{rs[0]['n_images']} ({rs[0]['n_unlabelled']})",
                            "All %": _pm([r["all"] for r in rs]),
                            "Old %": _pm([r["old"] for r in rs]),
                            "New %": _pm([r["new"] for r in rs]),
                            "s / run": f"{sum(r['seconds'] for r in rs) / len(rs):.0f}"})
    md = ("### Category discovery on digits-lt (known 0-4, 50 % of known labelled)\n\n"
          f"Protocol: transductive GCD — All / Old / New accuracy (%) on the unlabelled training "
          f"images, one Hungarian map over all classes (v2); mean ± std (ddof 1) over "
          f"{args.seeds} seed(s) (split, init, augmentation); small CNN (width 16) from "
          f"scratch, AdamW lr 2e-3, batch 128, {args.gcd_epochs} epochs; BaCon re-estimates "
          f"the distribution every 10 epochs. gcd = SimCLR + SupCon, semi-supervised k-means; "
          f"simgcd = parametric classifier (self-distillation + me-max + CE); bacon = two "
          f"branches, logit-adjusted soft SupCon with self-balanced sampling, k-means on the "
          f"contrastive branch.\n\n" + to_markdown_table(pd.DataFrame(summary)))
    return md, runs, summary


def bench_sr(args: argparse.Namespace) -> tuple[str, list[dict]]:
    """Table 2: PCL-SR vs L1 only at each scale."""
    import pandas as pd

    from medcl.core.sr_train import SRConfig, load_hr, score, test_crops, train
    from medcl.io import to_markdown_table

    held_out, _ = load_hr("skimage", train=False)
    rows = []
    for scale in args.scales:
        crops = test_crops(held_out, scale)
        for contrast in (False, True):
            for seed in range(args.sr_seeds):
                cfg = SRConfig(data="skimage", scale=scale, contrast=contrast,
                               epochs=args.sr_epochs, steps_per_epoch=args.sr_steps,
                               batch_size=args.sr_batch, patch=args.sr_patch,
                               n_resblocks=args.sr_blocks, n_feats=args.sr_feats, seed=seed)
                start = time.perf_counter()
                net, history, _ = train(cfg, progress=False)
                s = score(net, crops, scale)
                rows.append({"scale": scale, "loss": "L1 + 5 x contrast (PCL-SR)" if contrast
                             else "L1 only", "seed": seed, "psnr": s["psnr"], "ssim": s["ssim"],
                             "bicubic_psnr": s["bicubic_psnr"],
                             "bicubic_ssim": s["bicubic_ssim"],
                             "final_l1": history[-1]["l1"],
                             "seconds": round(time.perf_counter() - start, 1)})
                print(f"sr x{scale} {rows[-1]['loss']} seed {seed}: psnr {s['psnr']:.2f} "
                      f"ssim {s['ssim']:.4f} ({rows[-1]['seconds']:.0f} s)", flush=True)
    df = pd.DataFrame(rows)
    agg = (df.groupby(["scale", "loss"], sort=False)
           .agg(psnr=("psnr", "mean"), ssim=("ssim", "mean"),
                bicubic_psnr=("bicubic_psnr", "mean"), bicubic_ssim=("bicubic_ssim", "mean"),
                seconds=("seconds", "mean")).reset_index())
    table = [{"scale": f"x{r.scale}", "loss": r.loss, "PSNR (dB)": f"{r.psnr:.2f}",
              "SSIM": f"{r.ssim:.4f}", "bicubic PSNR": f"{r.bicubic_psnr:.2f}",
              "bicubic SSIM": f"{r.bicubic_ssim:.4f}", "s / run": f"{r.seconds:.0f}"}
             for r in agg.itertuples()]
    steps = args.sr_epochs * args.sr_steps
    md = ("### Super-resolution: PCL-SR vs L1 only (EDSR, scikit-image photographs)\n\n"
          f"Protocol: EDSR {args.sr_blocks} blocks x {args.sr_feats} channels (EDSR-baseline is "
          f"16 x 64), {steps} Adam steps (lr 5e-4) of {args.sr_batch} HR patches "
          f"{args.sr_patch} px with flips / rotations from astronaut, coffee, rocket, "
          f"immunohistochemistry, hubble_deep_field; LR = bicubic antialiased downscale, "
          f"quantised to 8 bits. PSNR / SSIM on the BT.601 Y channel, border = scale, mean over "
          f"the held-out 192 px centre crops of chelsea, camera, coins, brick; "
          f"{args.sr_seeds} seed(s) (mean).\n\n" + to_markdown_table(pd.DataFrame(table)))
    return md, rows


def bench_hvs_table(args: argparse.Namespace) -> tuple[str, list[dict]]:
    """Table 3 through ``bench_hvs``'s encoders and table."""
    from medcl.io import to_markdown_table

    names = ["sam-tiny-random", "sam-tiny-simclr", "cnn-simclr"]
    start = time.perf_counter()
    encoders, notes = bench_hvs.build_encoders(names, args.out / "hvs", args.hvs_epochs,
                                               sam_epochs=args.sam_epochs,
                                               sam_steps=args.sam_steps)
    wide, _ = bench_hvs.hvs_table(encoders, args.out / "hvs", args.hvs_conditions,
                                  args.hvs_ratios, args.hvs_steps)
    shown = wide.copy()
    for col in shown.columns[1:]:
        shown[col] = shown[col].map(lambda v: f"{v:.3f}")
    md = ("### Low-level vision probe (Cai et al., CVPR 2025): nine tests, three encoders\n\n"
          f"Protocol: stimuli 224 px at 60 ppd; response arccos(cos(f(T), f(R))) / pi; "
          f"Spearman (higher agrees with the human reference) and RMSE of log10 "
          f"thresholds / matches against it; grid {args.hvs_conditions} conditions x "
          f"{args.hvs_ratios} ratios, {args.hvs_steps} bisection steps. Encoders: "
          f"sam-tiny-random = segment-anything ImageEncoderViT (width 64, 4 blocks, 64 px) with "
          f"random weights; sam-tiny-simclr = the same initial weights after SimCLR on digits; "
          f"cnn-simclr = the core's small CNN after `medcl core image pretrain --method simclr`. "
          f"{'; '.join(notes)}; {time.perf_counter() - start:.0f} s in all.\n\n"
          + to_markdown_table(shown))
    return md, wide.to_dict("records")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for the CSV + MD files")
    ap.add_argument("--quick", action="store_true", help="smoke run: tiny budgets")
    ap.add_argument("--only", default="gcd,sr,hvs", help="comma-separated tables")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--gcd-epochs", type=int, default=40)
    ap.add_argument("--sr-epochs", type=int, default=10)
    ap.add_argument("--sr-steps", type=int, default=20, help="steps per SR epoch")
    ap.add_argument("--sr-batch", type=int, default=16)
    ap.add_argument("--sr-patch", type=int, default=48)
    ap.add_argument("--sr-blocks", type=int, default=8)
    ap.add_argument("--sr-feats", type=int, default=32)
    ap.add_argument("--sr-seeds", type=int, default=1)
    ap.add_argument("--hvs-epochs", type=int, default=3, help="cnn-simclr pretraining epochs")
    ap.add_argument("--sam-epochs", type=int, default=3, help="sam-tiny-simclr epochs")
    ap.add_argument("--sam-steps", type=int, default=None, help="batches per SAM epoch")
    ap.add_argument("--hvs-conditions", type=int, default=8)
    ap.add_argument("--hvs-ratios", type=int, default=10)
    ap.add_argument("--hvs-steps", type=int, default=10)
    args = ap.parse_args(argv)
    args.imbalances = IMBALANCES
    args.scales = (2, 4)
    if args.quick:
        args.seeds, args.gcd_epochs, args.imbalances = 2, 2, (10.0,)
        args.sr_epochs, args.sr_steps, args.sr_batch, args.sr_patch = 1, 2, 4, 24
        args.sr_blocks, args.sr_feats = 1, 8
        args.hvs_epochs, args.sam_epochs, args.sam_steps = 1, 1, 2
        args.hvs_conditions, args.hvs_ratios, args.hvs_steps = 3, 3, 2
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    import pandas as pd
    import torch

    from medcl.io import write_csv, write_text

    torch.set_num_threads(args.threads)
    only = {t.strip() for t in args.only.split(",") if t.strip()}
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parts = [f"# bench_core_image_2 ({'quick' if args.quick else 'full'} run)\n\n"
             f"Command: `{' '.join(['benchmarks/bench_core_image_2.py', *sys.argv[1:]])}`; "
             f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU."]
    if "gcd" in only:
        md, runs, summary = bench_gcd(args)
        write_csv(args.out / "gcd_runs.csv", pd.DataFrame(runs))
        write_csv(args.out / "gcd.csv", pd.DataFrame(summary))
        parts.append(md)
        print("\n" + md + "\n", flush=True)
    if "sr" in only:
        md, rows = bench_sr(args)
        write_csv(args.out / "sr.csv", pd.DataFrame(rows))
        parts.append(md)
        print("\n" + md + "\n", flush=True)
    if "hvs" in only:
        md, rows = bench_hvs_table(args)
        write_csv(args.out / "hvs.csv", pd.DataFrame(rows))
        parts.append(md)
        print("\n" + md + "\n", flush=True)
    parts.append(f"Total {time.perf_counter() - t0:.0f} s.")
    text = "\n\n".join(parts) + "\n"
    write_text(args.out / "bench_core_image_2.md", text)
    print(f"Total {time.perf_counter() - t0:.0f} s; wrote {args.out / 'bench_core_image_2.md'}")


if __name__ == "__main__":
    main()

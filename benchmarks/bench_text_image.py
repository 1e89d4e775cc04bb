"""Text-image benchmark on ``shapes`` (issue 16), one run, three tables:

1. the GAN with vs without label SupCon at an equal training budget, the same number of
   steps (the same encoders, data, widths and seeds; a wall-clock budget is unfair on a shared
   machine, where the load changes between runs): in-domain Fréchet distance (our DAMSM image
   encoder, not FID) and R-precision on a fresh ``shapes`` set, mean ± std over the seeds;
2. image-text matching: VSE++ vs DBL (joint anchor, relative boost; target and cooperative
   scores) at equal epochs, rSum on held-out images, mean ± std over the seeds;
3. step times (seconds per training step) of each.

The paper's direction (SupCon lowers FD; DBL raises rSum) is what we look for, not a promise.

Run: ``.venv/bin/python benchmarks/bench_text_image.py [--out runs/bench-text-image]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
import torch


def _mean_std(df: pd.DataFrame, by: str, cols: list[str]) -> pd.DataFrame:
    g = df.groupby(by, sort=False)[cols]
    out = g.mean().round(3).astype(str) + " ± " + g.std(ddof=1).round(3).astype(str)
    return out.reset_index()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-text-image"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--size", type=int, default=32, help="image size (32 on CPU, 64 on GPU)")
    ap.add_argument("--n-shapes", type=int, default=256)
    ap.add_argument("--width", type=int, default=8, help="GAN base width")
    ap.add_argument("--gan-epochs", type=int, default=5, help="epochs per GAN run")
    ap.add_argument("--itm-epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]

    from medcl.contrastive.text_image import Vocab, frechet_distance, r_precision
    from medcl.core.itm_train import ITMConfig, retrieval_table, train_itm
    from medcl.core.t2i_data import make_shapes, split
    from medcl.core.t2i_train import (
        EncoderConfig,
        GANConfig,
        _embed,
        load_encoders,
        pretrain_run,
        sample,
        train_gan,
    )
    from medcl.io.atomic import write_csv, write_text
    from medcl.io.runs import to_markdown_table

    args.out.mkdir(parents=True, exist_ok=True)
    enc_dir = args.out / "encoders"
    t0 = time.perf_counter()
    pretrain_run(EncoderConfig(n_shapes=args.n_shapes, image_size=args.size, epochs=6,
                               seed=0), enc_dir, progress=False)
    print(f"encoders: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    enc, vocab, ecfg, _ = load_encoders(enc_dir)
    data = make_shapes(args.n_shapes, args.size, 0)
    tr, _ = split(data, 0.2, 0)
    train = data.subset(tr)
    test = make_shapes(200, args.size, 1000)
    texts = [test.captions[c[0]] for c in test.captions_of()]
    real, sents = _embed(enc, vocab, test.images, texts, ecfg.max_len)
    _, pool = _embed(enc, vocab, test.images[:1], test.captions, ecfg.max_len)
    pool_labels = test.labels[test.caption_image]

    gan_rows, time_rows = [], []
    for seed in seeds:
        for arm in ("on", "off"):
            cfg = GANConfig(supcon=arm == "on", ngf=args.width, ndf=args.width, batch_size=16,
                            epochs=args.gan_epochs, seed=seed)
            t = train_gan(cfg, enc, vocab, ecfg, train, progress=False)
            fakes = sample(t.generator, enc, vocab, ecfg, cfg.nz, texts, seed=seed)
            fake, _ = _embed(enc, vocab, fakes, texts[:1], ecfg.max_len)
            steps = len(t.history) * (len(train.images) // 16)
            gan_rows.append({"supcon": arm, "seed": seed, "seconds": t.seconds,
                             "in_domain_fd": frechet_distance(real, fake),
                             "r_precision": r_precision(fake, sents, test.labels, pool,
                                                        pool_labels, seed=seed)})
            time_rows.append({"what": f"GAN step, SupCon {arm} (batch 16, {args.size}px)",
                              "seed": seed, "s_per_step": t.seconds / steps})
            print(gan_rows[-1], file=sys.stderr)
    itm_rows = []
    vocab_itm = Vocab.build(train.captions)
    for seed in seeds:
        for method in ("vse", "dbl"):
            cfg = ITMConfig(method=method, epochs=args.itm_epochs, image_size=args.size,
                            seed=seed)
            target, anchor, hist, secs = train_itm(cfg, train, vocab_itm, None, progress=False)
            table = retrieval_table(target, anchor, vocab_itm, test, cfg.max_len, method)
            for _, r in table.iterrows():
                itm_rows.append({"method": method, "scores": r["scores"], "seed": seed,
                                 "rsum": r["rsum"], "i2t_r1": r["i2t_r1"],
                                 "t2i_r1": r["t2i_r1"]})
            steps = len(hist) * (len(train.images) // min(cfg.batch_size, len(train.images)))
            time_rows.append({"what": f"itm {method} step (batch {cfg.batch_size})",
                              "seed": seed, "s_per_step": secs / steps})
    gan = pd.DataFrame(gan_rows)
    itm = pd.DataFrame(itm_rows)
    times = pd.DataFrame(time_rows)
    write_csv(args.out / "gan.csv", gan)
    write_csv(args.out / "itm.csv", itm)
    write_csv(args.out / "times.csv", times)
    gan_s = _mean_std(gan, "supcon", ["in_domain_fd", "r_precision", "seconds"])
    itm["row"] = itm["method"] + ": " + itm["scores"]
    itm_s = _mean_std(itm, "row", ["rsum", "i2t_r1", "t2i_r1"])
    time_s = times.groupby("what", sort=False)["s_per_step"].median().round(3).reset_index()
    md = (f"GAN, {len(seeds)} seeds, {args.gan_epochs} epochs per run, {args.size}px, width "
          f"{args.width}, {len(train.images)} training scenes; metrics on 200 fresh scenes:\n\n"
          + to_markdown_table(gan_s) + "\nMatching, rSum on the same 200 fresh scenes "
          f"({args.itm_epochs} epochs):\n\n" + to_markdown_table(itm_s)
          + "\nStep times (median s/step, CPU):\n\n" + to_markdown_table(time_s))
    write_text(args.out / "bench_text_image.md", md)
    print(md)


if __name__ == "__main__":
    main()

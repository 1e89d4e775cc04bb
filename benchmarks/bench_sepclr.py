"""SepCLR on digits-on-textures at a small budget: which of issue 11's items matter?

Trains each variant at several seeds (one unit of :func:`medcl.io.units.run_units` per
(variant, method, seed); rerunning resumes) and writes ``units_sepclr_ablation.csv`` with, per
unit: the authors' probe (default LogisticRegression on the codes, target images, accuracy),
our probe on the codes, our probe on the pooled features before the code layer (the layer the
former harness probed), and SepCLR's mechanism on held-out images (group from the salient
code; median norm of the salient projector output, background / target). Prints the mean +-
std table.

Variants (``--variants``): ``authors`` (the new defaults: one pass per view, the authors'
augmentations), ``joint`` (both views in one pass), ``crop`` (the former augmentations:
crop scale (0.6, 1) and flip only), ``joint_crop`` (both former settings). Every variant uses
the CPU-sized encoder (``small``: a one-block MONAI ResNet 8-64 channels, code 16 + 16) with
the authors' code layer and projector.

    OMP_NUM_THREADS=1 python benchmarks/bench_sepclr.py --out runs/bench-sepclr \\
        --seeds 0,1,2 --variants authors,joint,crop --n 500 --epochs 20
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

VARIANTS = {
    "authors": {},
    "joint": {"views": "joint"},
    "crop": {"crop_scale": 0.6, "jitter_p": 0.0, "grayscale_p": 0.0},
    "joint_crop": {"views": "joint", "crop_scale": 0.6, "jitter_p": 0.0, "grayscale_p": 0.0},
}


@torch.no_grad()
def _features_and_heads(model, images: torch.Tensor) -> dict[str, np.ndarray]:
    """Pooled features (before the code layer) of both spaces and the salient head output."""
    model.eval()
    out: dict[str, list] = {"common": [], "salient": [], "salient_head": []}
    for start in range(0, len(images), 256):
        x = images[start:start + 256]
        if hasattr(model, "common_encoder"):
            out["common"].append(model.common_encoder[0](x).numpy())
            out["salient"].append(model.salient_encoder[0](x).numpy())
            out["salient_head"].append(model(x)[1].numpy())
        else:
            h = model.encoder[0](x).numpy()
            half = h.shape[1] // 2
            out["common"].append(h[:, :half])
            out["salient"].append(h[:, half:])
    return {k: np.concatenate(v) for k, v in out.items() if v}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/bench-sepclr"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default="authors,joint,crop")
    ap.add_argument("--methods", default="sepclr,simclr")
    ap.add_argument("--simclr-variants", default="authors",
                    help="variants SimCLR runs in (SepCLR runs in all)")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args()

    from sklearn.linear_model import LogisticRegression

    from medcl.io.units import run_units
    from medcl.sepclr.config import SepCLRConfig
    from medcl.sepclr.evaluate import leakage_summary, probe_table
    from medcl.sepclr.harness import _digits_on_textures_split, run_method

    seeds = [int(s) for s in args.seeds.split(",")]
    base = SepCLRConfig(encoder="small", widths=[8, 16, 32, 64], common_dim=16, salient_dim=16,
                        batch_size=64, lr=1e-3, epochs=args.epochs, image_size=32, channels=1)
    simclr_variants = set(args.simclr_variants.split(","))
    units = [({"variant": v, "method": m, "seed": s}, None)
             for v in args.variants.split(",") for m in args.methods.split(",")
             for s in seeds if m == "sepclr" or v in simclr_variants]

    def work(key: dict, _) -> list[dict]:
        images, is_target, attrs, tr, te = _digits_on_textures_split(args.n, 32, key["seed"])
        cfg = replace(base, method=key["method"], seed=key["seed"], **VARIANTS[key["variant"]])
        res = run_method(cfg, images, is_target, attrs, tr, te, None, progress=False)
        row: dict = {}
        auth = res.authors.set_index(["attribute", "space"]).score
        leak = res.leakage.set_index("attribute")
        feats = _features_and_heads(res.model, images)
        y = is_target.numpy()
        fleak = leakage_summary(probe_table(feats, attrs, y, tr, te)).set_index("attribute")
        for attr, own, other in (("digit", "salient", "common"),
                                 ("texture", "common", "salient")):
            row[f"{attr}<-{own} authors"] = auth[attr, own]
            row[f"{attr}<-{other} authors"] = auth[attr, other]
            row[f"{attr}<-{own} ours"] = leak.loc[attr, "wanted"]
            row[f"{attr}<-{other} ours"] = leak.loc[attr, "leaked"]
            row[f"{attr}<-{own} features"] = fleak.loc[attr, "wanted"]
            row[f"{attr}<-{other} features"] = fleak.loc[attr, "leaked"]
        sal = res.reps["salient"]
        row["group<-salient code"] = LogisticRegression(max_iter=2000).fit(
            sal[tr], y[tr]).score(sal[te], y[te])
        if "salient_head" in feats:
            norms = np.linalg.norm(feats["salient_head"][te], axis=1)
            row["head norm bg"] = float(np.median(norms[~y[te]]))
            row["head norm tg"] = float(np.median(norms[y[te]]))
        row["s/epoch"] = res.seconds_per_epoch
        return [row]

    result = run_units(units, work, args.out / "units_sepclr_ablation.csv", progress="lines",
                       what="run", signature={"n": args.n, "epochs": args.epochs})
    table = result.table[result.table.status == "ok"].drop(columns=["status", "error"])
    stats = table.drop(columns="seed").groupby(["variant", "method"], sort=False)
    mean, std = stats.mean(numeric_only=True), stats.std(numeric_only=True)
    cells = mean.map(lambda v: f"{v:.3f}") + " +- " + std.map(lambda v: f"{v:.3f}")
    cells["seeds"] = stats.size()
    with pd.option_context("display.width", 250, "display.max_columns", 40):
        print(cells.T.to_string())


if __name__ == "__main__":
    main()

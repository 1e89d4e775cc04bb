"""Low-level vision probe (issue 17): the nine tests of Cai et al. (CVPR 2025) on several encoders.

* ``sam-tiny-random``: a randomly initialised tiny SAM image encoder (segment-anything's
  ``ImageEncoderViT``, width 64, 4 blocks, 64 px input), behind SAM's preprocessing;
* ``sam-tiny-simclr``: the same tiny SAM encoder (same initial weights) after a short SimCLR
  pretraining on scikit-learn's digits (grey, repeated to RGB, 64 px; NT-Xent at tau 0.2 on a
  projection of the mean-pooled encoder map);
* ``cnn-random``: the core's small CNN backbone (3 blocks, width 16), random weights;
* ``cnn-simclr``: the same backbone after a short ``medcl core image pretrain --method simclr``
  on scikit-learn's digits (grey; the probe feeds it the Rec. 709 luma at 224 px).

The table gives per test the Spearman score (higher agrees with humans) and the RMSE of log10
thresholds/matches against the human references of ``medcl.contrastive.hvs.human``. It is a
functional comparison at a small grid, not a reproduction of the paper's numbers.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_hvs.py --out OUT
[--encoders sam-tiny-random,cnn-simclr] [--conditions 5 --ratios 5 --steps 6 --epochs 3]``;
writes ``OUT/bench_hvs.csv`` and ``.md``. ``benchmarks/bench_core_image_2.py`` calls
:func:`build_encoders` and :func:`hvs_table`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

ENCODERS = ("sam-tiny-random", "sam-tiny-simclr", "cnn-random", "cnn-simclr")


def tiny_sam(seed: int = 0) -> nn.Module:
    """The randomly initialised tiny SAM image encoder behind SAM's preprocessing."""
    import torch

    from medcl.core.hvs_encoders import sam_adapter, sam_image_encoder

    torch.manual_seed(seed)
    return sam_adapter(sam_image_encoder(embed_dim=64, depth=4, num_heads=4,
                                         global_attn_indexes=(1, 3), img_size=64))


def pretrain_tiny_sam(epochs: int, seed: int = 0, batch: int = 128, tau: float = 0.2,
                      max_steps: int | None = None) -> tuple[nn.Module, list[float]]:
    """:func:`tiny_sam` (same initial weights) after ``epochs`` of SimCLR on the digits
    (at most ``max_steps`` batches per epoch when given).

    Returns the adapted encoder and the mean NT-Xent of each epoch.
    """
    import torch
    import torch.nn.functional as F

    from medcl.contrastive.functional import LabelMasks, info_nce, pair_labels
    from medcl.core.data import BatchAugment, load_digits_set

    enc = tiny_sam(seed)
    torch.manual_seed(seed)
    proj = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 64))
    images = load_digits_set().images
    augment = BatchAugment((8, 8), 1, 2)
    params = list(enc.parameters()) + list(proj.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    enc.train()
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        total, steps = 0.0, 0
        for i in range(0, len(images) - batch + 1, batch):
            if max_steps is not None and steps >= max_steps:
                break
            views = augment(images[order[i:i + batch]])
            x = torch.cat(views).clamp(0, 1).repeat(1, 3, 1, 1)
            z = F.normalize(proj(enc(x).mean(dim=(2, 3))), dim=1)
            ids = pair_labels(batch, 2, z.device)
            loss = info_nce(z, z, LabelMasks(ids, ids, torch.arange(2 * batch)),
                            temperature=tau)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(total / max(steps, 1))
    return enc.eval(), losses


def pretrain_cnn(run_dir: Path, epochs: int, seed: int = 0) -> None:
    """``medcl core image pretrain --method simclr --data digits`` into ``run_dir`` (kept)."""
    from medcl.core.config import ImageConfig
    from medcl.core.train import pretrain_run

    if not (run_dir / "model.pt").is_file():
        pretrain_run(ImageConfig(method="simclr", data="digits", epochs=epochs, seed=seed),
                     run_dir, progress=False)


def build_encoders(names: list[str] | tuple[str, ...], out: Path, epochs: int,
                   sam_epochs: int | None = None, sam_steps: int | None = None
                   ) -> tuple[dict[str, nn.Module], list[str]]:
    """The named encoders (see the module docstring) and one note line per trained one."""
    import torch

    from medcl.contrastive.backbones import SmallCNN
    from medcl.contrastive.hvs.adapter import DisplayAdapter
    from medcl.core.encoder import load_encoder

    unknown = [n for n in names if n not in ENCODERS]
    if unknown:
        raise ValueError(f"unknown encoder(s) {unknown}; choose among {ENCODERS}")
    encoders: dict[str, nn.Module] = {}
    notes: list[str] = []
    for name in names:
        start = time.perf_counter()
        if name == "sam-tiny-random":
            encoders[name] = tiny_sam(0)
        elif name == "sam-tiny-simclr":
            n = epochs if sam_epochs is None else sam_epochs
            encoders[name], losses = pretrain_tiny_sam(n, max_steps=sam_steps)
            notes.append(f"sam-tiny-simclr: SimCLR on digits, {n} epochs, NT-Xent "
                         f"{losses[0]:.3f} -> {losses[-1]:.3f} "
                         f"({time.perf_counter() - start:.0f} s)")
        elif name == "cnn-random":
            torch.manual_seed(0)
            encoders[name] = DisplayAdapter(SmallCNN(1, 16), channels=1).eval()
        else:
            run_dir = out / "cnn-simclr-run"
            pretrain_cnn(run_dir, epochs)
            encoders[name] = load_encoder(str(run_dir))
            notes.append(f"cnn-simclr: `medcl core image pretrain --method simclr --data "
                         f"digits --epochs {epochs}` ({time.perf_counter() - start:.0f} s incl. "
                         "loading)")
    return encoders, notes


def hvs_table(encoders: dict[str, nn.Module], out: Path, conditions: int, ratios: int,
              steps: int, progress: bool = True) -> tuple[pd.DataFrame, dict[str, float]]:
    """Run the nine tests on every encoder (one run folder each under ``out``); return the wide
    table (one row per test, Spearman and RMSE per encoder) and the seconds per encoder."""
    import pandas as pd

    from medcl.core.hvs_runner import HVSConfig, run_hvs

    rows, seconds = [], {}
    for name, enc in encoders.items():
        start = time.perf_counter()
        cfg = HVSConfig(encoder=name, conditions=conditions, ratios=ratios, steps=steps)
        run_hvs(cfg, out / name, encoder=enc, progress=False)
        table = pd.read_csv(out / name / "hvs.csv")
        for _, r in table.iterrows():
            rows.append({"test": r["test"], "encoder": name, "spearman": r["spearman"],
                         "rmse_log10": r["rmse_log10"]})
        seconds[name] = time.perf_counter() - start
        if progress:
            print(f"hvs {name}: {seconds[name]:.0f} s", flush=True)
    long = pd.DataFrame(rows)
    wide = long.pivot(index="test", columns="encoder", values=["spearman", "rmse_log10"])
    wide.columns = [f"{enc} {metric}" for metric, enc in wide.columns]
    order = list(pd.unique(long["test"]))
    cols = [f"{enc} {m}" for m in ("spearman", "rmse_log10") for enc in encoders]
    wide = wide.loc[order, cols].reset_index()
    return wide, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--encoders", default="sam-tiny-random,cnn-random,cnn-simclr",
                    help=f"comma-separated, among {', '.join(ENCODERS)}")
    ap.add_argument("--conditions", type=int, default=5)
    ap.add_argument("--ratios", type=int, default=5)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from medcl.io import to_markdown_table, write_csv, write_text

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    encoders, notes = build_encoders(names, args.out, args.epochs)
    wide, _ = hvs_table(encoders, args.out, args.conditions, args.ratios, args.steps)
    write_csv(args.out / "bench_hvs.csv", wide)
    md = to_markdown_table(wide)
    note = (f"\n\nGrid: {args.conditions} conditions x {args.ratios} ratios, {args.steps} "
            f"bisection steps; {'; '.join(notes) or 'no trained encoder'}; total "
            f"{time.perf_counter() - t0:.0f} s, {args.threads} thread(s).\n")
    write_text(args.out / "bench_hvs.md", md + note)
    print(md + note)


if __name__ == "__main__":
    main()

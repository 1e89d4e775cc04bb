"""Run folders of the DB-SAM app: train, load, evaluate against vanilla SAM."""

from __future__ import annotations

import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .config import DBSAMConfig

BASE_WEIGHTS = "sam_base.pt"
"""The SAM weights DB-SAM started from when no official checkpoint was given (tiny/random)."""


def _cases(images: Path, labels: Path | None):
    from medio.cases import list_cases

    from .data import SUFFIXES

    return list_cases(images, labels, suffixes=SUFFIXES, what="image (NIfTI volume or PNG/JPG)")


def train_run(cfg: DBSAMConfig, images: Path, labels: Path, out: Path, *,
              progress: bool = True, resume: bool = False) -> Path:
    """``medcl dbsam train``: read and check every case first, then train and report.

    ``resume``: continue from ``out/checkpoints/last.pt`` (same config; the engine restores
    model, optimiser, schedule and random streams, so the result equals an uninterrupted run).
    """
    from medio import RunFolder, save_torch

    from .data import SliceDataset, load_case
    from .model import DBSAM, build_sam, parameter_counts
    from .train import train_model

    cases = _cases(images, labels)
    data = [load_case(img, lab, cfg) for _, img, lab in cases]
    dataset = SliceDataset(data, cfg)
    if len(dataset) == 0:
        from medio import InputFileError

        raise InputFileError(
            f"no slice holds a label with at least {cfg.min_pixels} pixels"
            + (f" among labels {cfg.labels}" if cfg.labels else ""), path=labels,
            fix="check the label files (or lower --min-pixels / change --labels)")
    torch.manual_seed(cfg.seed)
    sam = build_sam(cfg.arch, cfg.image_size, cfg.sam_checkpoint)
    folder = RunFolder.create(out)
    if cfg.sam_checkpoint is None:
        # no official weights: keep the start so `evaluate --baseline sam` can use the same SAM
        save_torch(folder.root / BASE_WEIGHTS, {k: v.clone() for k, v in sam.state_dict().items()})
    model = DBSAM(sam, kv_grid=cfg.kv_grid)
    counts = parameter_counts(model)
    codes = sorted({int(c) for d in data for s in d.labels for c in np.unique(s) if c})
    folder.write_config(cfg, seed=cfg.seed, extra={
        "images": str(images), "labels": str(labels), "cases": [c for c, _, _ in cases],
        "samples": len(dataset), "label_codes": codes, "parameters": counts})
    t0 = time.perf_counter()
    model, history = train_model(model, dataset, cfg, folder.root, progress=progress,
                                 resume=resume)
    seconds = time.perf_counter() - t0
    folder.save_model(model.state_dict())
    folder.write_metrics(pd.DataFrame(history))
    first, last = history[0]["loss"], history[-1]["loss"]
    weights = cfg.sam_checkpoint or f"random initialisation (saved as `{BASE_WEIGHTS}`)"
    folder.write_report(
        f"# DB-SAM run\n\n{len(cases)} cases, {len(dataset)} (slice, label) samples, labels "
        f"{codes}; SAM {cfg.arch} at {cfg.image_size}² from {weights}; {cfg.modality.upper()} "
        f"intensities; {cfg.epochs} epochs in {seconds:.0f} s.\n\n"
        f"Parameters: {counts['trainable']:,} trainable (adapters, conv branch, cross-attention, "
        f"fusion, neck, prompt encoder, mask decoder), {counts['frozen']:,} frozen (SAM's "
        f"ViT).\n\nDiceCE loss: {first:.4f} (epoch 1) -> {last:.4f} (epoch {len(history)}); "
        f"per epoch in `metrics.csv`.\n\nSegment with `medcl dbsam segment --model {out} "
        f"--image IN.nii.gz --box X0,Y0,Z0,X1,Y1,Z1 --out OUT.nii.gz`.\n")
    return folder.report_path


def load_config(run_dir: Path) -> DBSAMConfig:
    """The :class:`DBSAMConfig` of a train run (a clear error for another folder)."""
    from medio import ConfigError, RunFolder

    folder = RunFolder(Path(run_dir))
    raw = folder.read_config().get("config")
    if not raw or "kv_grid" not in raw or "arch" not in raw:
        raise ConfigError("config.yaml is not a DB-SAM run's", path=folder.config_path,
                          fix="pass the folder written by `medcl dbsam train --out RUN`")
    known = {f.name for f in fields(DBSAMConfig)}
    return DBSAMConfig(**{k: v for k, v in raw.items() if k in known})


def load_run(run_dir: Path) -> tuple[DBSAMConfig, torch.nn.Module]:
    """(config, trained DB-SAM) of a train run."""
    from medio import RunFolder

    from .model import DBSAM, build_sam

    cfg = load_config(run_dir)
    model = DBSAM(build_sam(cfg.arch, cfg.image_size), kv_grid=cfg.kv_grid)
    model.load_state_dict(RunFolder(Path(run_dir)).load_model())
    return cfg, model.eval()


def load_baseline(run_dir: Path, cfg: DBSAMConfig) -> torch.nn.Module:
    """Vanilla SAM with the weights the run started from (official checkpoint or saved init)."""
    from medio import RunFolderError

    from .model import VanillaSAM, build_sam

    if cfg.sam_checkpoint is not None:
        return VanillaSAM(build_sam(cfg.arch, cfg.image_size, cfg.sam_checkpoint)).eval()
    path = Path(run_dir) / BASE_WEIGHTS
    if not path.exists():
        raise RunFolderError(f"{BASE_WEIGHTS} is missing", path=path,
                             fix="re-train the run, or evaluate without --baseline")
    sam = build_sam(cfg.arch, cfg.image_size)
    sam.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return VanillaSAM(sam).eval()


def model_from_checkpoint(checkpoint: Path, arch: str, image_size: int) -> torch.nn.Module:
    """Vanilla SAM from an official checkpoint (``segment --sam-checkpoint``)."""
    from .model import VanillaSAM, build_sam

    return VanillaSAM(build_sam(arch, image_size, checkpoint)).eval()


def evaluate_run(run_dir: Path, images: Path, labels: Path, out: Path, *,
                 baseline: bool = False, progress: bool = True) -> Path:
    """``medcl dbsam evaluate``: per case and label 3-D Dice and NSD (batch-safe, resumable),
    summary table, overlay PNG; vanilla SAM with the same weights as the baseline column."""
    from rich.progress import Progress

    from medio import RunFolder, write_text
    from medio.cases import run_cases

    from .data import load_case
    from .evaluate import CASE_COLUMNS, dice_nsd, overlay_figure, summary_table
    from .infer import SliceSegmenter, predict_label

    cases = _cases(images, labels)
    cfg, model = load_run(run_dir)
    methods = [("dbsam", model)]
    if baseline:
        methods.append(("sam", load_baseline(run_dir, cfg)))
    folder = RunFolder.create(out)  # an existing folder is reused: cases.csv resumes
    folder.write_config({"model": str(run_dir), "images": str(images), "labels": str(labels),
                         "baseline": "sam" if baseline else None,
                         "eval_margin": cfg.eval_margin, "nsd_tolerance_mm": cfg.nsd_tolerance_mm})
    panels: dict[str, dict] = {}
    table = None
    show = progress
    with Progress(disable=not show, transient=True) as bar:
        for method, net in methods:
            task = bar.add_task(f"{method}: cases", total=len(cases))

            def score(cid: str, paths, net=net, method=method) -> list[dict]:
                image, label = paths
                case = load_case(image, label, cfg)
                seg = SliceSegmenter(net, case)
                rows = []
                vol = case.label_volume()
                codes = [int(c) for c in np.unique(vol) if c != 0
                         and (cfg.labels is None or int(c) in cfg.labels)]
                sp = (case.spacing[2], case.spacing[0], case.spacing[1])
                for code in codes:
                    t0 = time.perf_counter()
                    pred = predict_label(seg, code, cfg.eval_margin)
                    truth = vol == code
                    dice, nsd = dice_nsd(pred, truth, sp, cfg.nsd_tolerance_mm)
                    rows.append({"label": code, "dice": dice, "nsd": nsd,
                                 "pred_voxels": int(pred.sum()),
                                 "truth_voxels": int(truth.sum()),
                                 "slices": int(truth.any(axis=(1, 2)).sum()),
                                 "seconds": round(time.perf_counter() - t0, 3)})
                    if len(panels) < 3 or cid in panels:
                        z = int(truth.sum(axis=(1, 2)).argmax())
                        p = panels.setdefault(cid, {"title": f"{cid} slice {z} label {code}",
                                                    "image": case.slices[z], "truth": truth[z],
                                                    "z": z, "code": code, "preds": {}})
                        if p["code"] == code:
                            p["preds"][method] = pred[p["z"]]
                return rows

            table = run_cases(((c, (i, lab)) for c, i, lab in cases), score, folder.root /
                              "cases.csv", method=method, columns=CASE_COLUMNS,
                              on_case=lambda c, s, t=task: bar.advance(t))
    assert table is not None
    summary = summary_table(table)
    summary_md = folder.write_table("summary", summary)
    write_text(folder.root / "summary.md", summary_md + "\n")
    folder.write_metrics(table)
    if panels:
        import matplotlib.pyplot as plt

        fig = overlay_figure(list(panels.values()))
        folder.save_figure("overlays", fig)
        plt.close(fig)
    failed = sorted(table.loc[table.status == "failed", "case_id"].unique().tolist())
    errors = table.loc[table.status == "failed", ["method", "case_id", "error"]] \
        .drop_duplicates()
    failed_md = "".join(f"\n- {r.method} {r.case_id}: {r.error}" for r in errors.itertuples())
    folder.write_report(
        f"# DB-SAM evaluation of `{run_dir}`\n\n{len(cases)} cases"
        f"{f'; failed: {failed}' if failed else ''}. Prompt: each label's tight box grown by "
        f"{cfg.eval_margin} px on every slice that holds it (MedSAM/DB-SAM protocol); 3-D Dice "
        f"and normalised surface Dice (tolerance {cfg.nsd_tolerance_mm} mm), mean ± std over "
        f"cases; `sam` is vanilla SAM with the weights DB-SAM started from.\n\n{summary_md}\n\n"
        f"Per case and label: `cases.csv`."
        + ("\n\n![overlays](overlays.png)\n" if panels else "\n")
        + (f"\nFailed cases:{failed_md}\n" if failed_md else ""))
    return folder.report_path

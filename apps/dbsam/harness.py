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
    from medcl.io.cases import list_cases

    from .data import SUFFIXES

    return list_cases(images, labels, suffixes=SUFFIXES, what="image (NIfTI volume or PNG/JPG)")


def _check_can_train(cfg: DBSAMConfig, out: Path, resume: bool) -> None:
    """Refuse, before anything is read or written, a missing GPU or a trained ``out``."""
    from medcl.io import ConfigError, RunFolder

    if cfg.accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA GPU is available here",
                          fix="use --device auto or --device cpu")
    if not resume and RunFolder(out).model_path.exists():
        raise ConfigError("holds a trained model already", path=out,
                          fix="use --resume to continue it, or another --out")


def _training_data(cfg: DBSAMConfig, images: Path, labels: Path):
    """Read and check every case; ``(cases, case data, SliceDataset)``.

    Raises
    ------
    medcl.io.InputFileError
        A bad file, or no slice with a label of at least ``cfg.min_pixels`` pixels.
    """
    from medcl.io import InputFileError

    from .data import SliceDataset, load_case

    cases = _cases(images, labels)
    data = [load_case(img, lab, cfg) for _, img, lab in cases]
    dataset = SliceDataset(data, cfg)
    if len(dataset) == 0:
        raise InputFileError(
            f"no slice holds a label with at least {cfg.min_pixels} pixels"
            + (f" among labels {cfg.labels}" if cfg.labels else ""), path=labels,
            fix="check the label files" + (" or change --label-codes" if cfg.labels else ""))
    return cases, data, dataset


def _train_report(cfg: DBSAMConfig, out: Path, n_cases: int, n_samples: int, codes: list[int],
                  counts: dict[str, int], history: list[dict], seconds: float) -> str:
    """``report.md`` of a training run."""
    first, last = history[0]["loss"], history[-1]["loss"]
    weights = cfg.sam_checkpoint or f"random initialisation (saved as `{BASE_WEIGHTS}`)"
    lite = cfg.arch == "litemedsam"
    backbone = "LiteMedSAM (TinyViT)" if lite else f"SAM {cfg.arch}"
    frozen = "LiteMedSAM's TinyViT" if lite else "SAM's ViT"
    return (
        f"# DB-SAM run\n\n{n_cases} cases, {n_samples} (slice, label) samples, labels "
        f"{codes}; {backbone} at {cfg.image_size}² from {weights}; {cfg.modality.upper()} "
        f"intensities; {cfg.epochs} epochs in {seconds:.0f} s.\n\n"
        f"Parameters: {counts['trainable']:,} trainable (adapters, conv branch, cross-attention, "
        f"fusion, neck, prompt encoder, mask decoder), {counts['frozen']:,} frozen ({frozen})."
        f"\n\nDiceCE loss: {first:.4f} (epoch 1) -> {last:.4f} (epoch {len(history)}); "
        f"per epoch in `metrics.csv`.\n\nSegment with `medcl dbsam segment --model {out} "
        f"--image IN.nii.gz --box X0,Y0,Z0,X1,Y1,Z1 --out OUT.nii.gz`.\n")


def train_run(cfg: DBSAMConfig, images: Path, labels: Path, out: Path, *,
              progress: bool = True, resume: bool = False) -> Path:
    """``medcl dbsam train``: read and check every case first, then train and report.

    Writes ``config.yaml``, ``metrics.csv`` (the per-epoch training log), ``model.pt``,
    ``report.md`` and, without an official SAM checkpoint, the starting SAM weights
    (``sam_base.pt``) into ``out``.

    ``resume``: continue from ``out/checkpoints/last.pt`` (same config; the engine restores
    model, optimiser, schedule and random streams, so the result equals an uninterrupted run).
    """
    from medcl.io import RunFolder, save_torch

    from .model import build_sam, parameter_counts
    from .train import train_model

    _check_can_train(cfg, out, resume)
    cases, data, dataset = _training_data(cfg, images, labels)
    torch.manual_seed(cfg.seed)
    sam = build_sam(cfg.arch, cfg.image_size, cfg.sam_checkpoint)
    folder = RunFolder.create(out)
    if cfg.sam_checkpoint is None:
        # no official weights: keep the start so `evaluate --baseline sam` can use the same SAM
        save_torch(folder.root / BASE_WEIGHTS, {k: v.clone() for k, v in sam.state_dict().items()})
    model = _dbsam(sam, cfg)
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
    folder.write_report(_train_report(cfg, out, len(cases), len(dataset), codes, counts,
                                      history, seconds))
    return folder.report_path


def load_config(run_dir: Path) -> DBSAMConfig:
    """The :class:`DBSAMConfig` of a train run (a clear error for another folder)."""
    from medcl.io import ConfigError, RunFolder

    folder = RunFolder(Path(run_dir))
    raw = folder.read_config().get("config")
    if not raw or "eval_margin" not in raw or "arch" not in raw:
        raise ConfigError("config.yaml is not a DB-SAM run's", path=folder.config_path,
                          fix="pass the folder written by `medcl dbsam train --out RUN`")
    known = {f.name for f in fields(DBSAMConfig)}
    return DBSAMConfig(**{k: v for k, v in raw.items() if k in known})


def _dbsam(sam, cfg: DBSAMConfig) -> torch.nn.Module:
    """DB-SAM around ``sam`` with the run's architecture settings (on LiteMedSAM's TinyViT:
    :class:`medcl.dbsam.litemedsam.DBSAMLite`)."""
    from .model import make_dbsam

    return make_dbsam(sam, num_points=cfg.num_points, ffn_ratio=cfg.ffn_ratio,
                      drop_path=cfg.drop_path)


def load_run(run_dir: Path) -> tuple[DBSAMConfig, torch.nn.Module]:
    """(config, trained DB-SAM) of a train run.

    Raises
    ------
    medcl.io.RunFolderError
        ``model.pt`` does not fit the architecture (e.g. a run trained before the image
        pyramid and deformable attention replaced the single-scale branch and pooled
        attention).
    """
    from medcl.io import RunFolder, RunFolderError

    from .model import build_sam

    cfg = load_config(run_dir)
    model = _dbsam(build_sam(cfg.arch, cfg.image_size), cfg)
    folder = RunFolder(Path(run_dir))
    try:
        model.load_state_dict(folder.load_model())
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RunFolderError(
            f"model.pt does not fit this version's DB-SAM architecture ({first})",
            path=folder.model_path,
            fix="re-train the run with this version (`medcl dbsam train`)") from err
    return cfg, model.eval()


def load_baseline(run_dir: Path, cfg: DBSAMConfig) -> torch.nn.Module:
    """Vanilla SAM with the weights the run started from (official checkpoint or saved init)."""
    from medcl.io import RunFolderError

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
    """Vanilla SAM, or vanilla LiteMedSAM (``arch="litemedsam"``), from an official checkpoint
    (``segment --sam-checkpoint``)."""
    from .model import VanillaSAM, build_sam

    return VanillaSAM(build_sam(arch, image_size, checkpoint)).eval()


INT_COLUMNS = ("label", "pred_voxels", "truth_voxels", "slices")
"""Integer columns of ``cases.csv`` (empty, not NaN floats, in a failed case's row)."""


def _tidy(table: pd.DataFrame, methods: list[str], case_ids: list[str]) -> pd.DataFrame:
    """The case table in a fixed order (method, case, label) with integer columns, so that a
    resumed evaluation ends with the same table as one uninterrupted run."""
    t = table.copy()
    for col in INT_COLUMNS:
        t[col] = pd.to_numeric(t[col], errors="coerce").round().astype("Int64")
    order = {"_m": t.method.map({m: i for i, m in enumerate(methods)}),
             "_c": t.case_id.map({c: i for i, c in enumerate(case_ids)})}
    return (t.assign(**order).sort_values(["_m", "_c", "label"], kind="stable")
            .drop(columns=list(order)).reset_index(drop=True))


def _write_csv_if_changed(path: Path, table: pd.DataFrame) -> None:
    """Write ``table`` to ``path`` atomically unless the file holds it already (a resumed
    evaluation with nothing new leaves ``cases.csv`` as it was)."""
    from medcl.io.atomic import write_csv

    if not path.exists() or path.read_text(encoding="utf-8") != table.to_csv(index=False):
        write_csv(path, table)


def _panels(table: pd.DataFrame, cases, cfg: DBSAMConfig, nets: dict, n: int = 3) -> list[dict]:
    """Overlay panels of the first ``n`` cases DB-SAM scored: the slice where the case's first
    label is largest, with each method's prediction from the evaluation prompt on that slice."""
    from .data import load_case
    from .infer import SliceSegmenter
    from .prompts import expand_box, mask_box, px_at_256

    ok = table[(table.status == "ok") & (table.method == "dbsam")]
    panels = []
    for cid, image, label in cases:
        codes = ok.label[ok.case_id == cid].dropna()
        if codes.empty:
            continue
        case = load_case(image, label, cfg)
        code = int(codes.min())
        truth = case.label_volume() == code
        z = int(truth.sum(axis=(1, 2)).argmax())
        h, w = truth.shape[1:]
        box = expand_box(mask_box(truth[z]), px_at_256(cfg.eval_margin, (h, w)), (h, w))
        preds = {m: SliceSegmenter(net, case).predict(z, box) for m, net in nets.items()}
        panels.append({"title": f"{cid} slice {z} label {code}", "image": case.slices[z],
                       "truth": truth[z], "preds": preds})
        if len(panels) == n:
            break
    return panels


def _evaluation_signature(run_dir: Path, images: Path, labels: Path, baseline: bool,
                          cfg: DBSAMConfig) -> dict:
    """What an evaluation folder's results depend on; a resumed run must match it."""
    return {"model": str(Path(run_dir).resolve()), "images": str(Path(images).resolve()),
            "labels": str(Path(labels).resolve()), "baseline": "sam" if baseline else None,
            "channel": cfg.channel, "labels_scored": cfg.labels,
            "eval_margin": cfg.eval_margin, "nsd_tolerance_mm": cfg.nsd_tolerance_mm,
            "scores": "dice,nsd_paper,nsd_2mm"}


def _label_codes(vol: np.ndarray, cfg: DBSAMConfig, label: Path) -> list[int]:
    """The non-zero codes of a ``(Z, H, W)`` label volume that the run scores."""
    from medcl.io import InputFileError

    codes = [int(c) for c in np.unique(vol)
             if c != 0 and (cfg.labels is None or int(c) in cfg.labels)]
    if not codes:
        among = f" among the run's labels {cfg.labels}" if cfg.labels else ""
        raise InputFileError(f"label has no structures{among}", path=label,
                             fix="pass a label map with non-zero codes, or drop the case")
    return codes


def score_case(net: torch.nn.Module, cfg: DBSAMConfig, image: Path, label: Path) -> list[dict]:
    """One case's rows of ``cases.csv``: per label, the slice-wise box-prompted prediction
    (:func:`medcl.dbsam.infer.predict_label`) scored in 3-D by Dice and NSD; for a challenge
    ``.npz`` case, its own boxes under the challenge's protocol and metrics
    (:func:`medcl.dbsam.npz.score_npz`).

    Returns
    -------
    list of dict
        One row per scored label code: ``label, dice, nsd_paper, nsd_2mm, pred_voxels,
        truth_voxels, slices, seconds`` (see :mod:`medcl.dbsam.evaluate`).

    Raises
    ------
    medcl.io.InputFileError
        An unreadable case, or a label map without a scored structure.
    """
    from .data import load_case
    from .evaluate import scores
    from .infer import SliceSegmenter, predict_label
    from .npz import is_npz, score_npz

    if is_npz(image):  # the MedSAM-on-Laptop protocol: the file's own boxes
        return score_npz(net, image, label, cfg.nsd_tolerance_mm)
    case = load_case(image, label, cfg)
    seg = SliceSegmenter(net, case)
    vol = case.label_volume()
    spacing = (case.spacing[2], case.spacing[0], case.spacing[1])
    rows = []
    for code in _label_codes(vol, cfg, label):
        t0 = time.perf_counter()
        pred = predict_label(seg, code, cfg.eval_margin)
        truth = vol == code
        rows.append({"label": code, **scores(pred, truth, spacing, cfg.nsd_tolerance_mm),
                     "pred_voxels": int(pred.sum()),
                     "truth_voxels": int(truth.sum()),
                     "slices": int(truth.any(axis=(1, 2)).sum()),
                     "seconds": round(time.perf_counter() - t0, 3)})
    return rows


def _score_cases(cases, nets: dict, cfg: DBSAMConfig, csv_path: Path, signature: dict, *,
                 progress: str, shard=None) -> pd.DataFrame:
    """Score every (method, case) not yet in ``csv_path`` (failed ones again), one row per
    label, written as each case finishes (:func:`medcl.io.units.run_units`: a bar on a
    terminal, one line per case otherwise, nothing when ``progress`` is ``"quiet"``); return
    the whole table in a fixed order."""
    from medcl.io.units import run_units

    from .evaluate import CASE_COLUMNS

    units = [({"method": method, "case_id": str(cid)}, (image, label))
             for method in nets for cid, image, label in cases]
    result = run_units(units, lambda key, paths: score_case(nets[key["method"]], cfg, *paths),
                       csv_path, columns=CASE_COLUMNS, signature=signature, retry_failed=True,
                       progress=progress, what="case", shard=shard)
    return _tidy(result.table, list(nets), [c for c, _, _ in cases])


def _write_overlays(folder, table: pd.DataFrame, cases, cfg: DBSAMConfig,
                    nets: dict) -> bool:
    """``overlays.png`` of the first cases DB-SAM scored; whether there was any to draw."""
    panels = _panels(table, cases, cfg, nets)
    if not panels:
        return False
    import matplotlib.pyplot as plt

    from .evaluate import overlay_figure

    fig = overlay_figure(panels)
    folder.save_figure("overlays", fig)
    plt.close(fig)
    return True


def _evaluation_report(run_dir: Path, n_cases: int, cfg: DBSAMConfig, table: pd.DataFrame,
                       summary_md: str, overlays: bool) -> str:
    """``report.md`` of an evaluation: protocol, summary table, failed cases."""
    bad = table[table.status == "failed"]
    failed = sorted(bad.case_id.unique().tolist())
    errors = bad[["method", "case_id", "error"]].drop_duplicates()
    failed_md = "".join(f"\n- {r.method} {r.case_id}: {r.error}" for r in errors.itertuples())
    return (
        f"# DB-SAM evaluation of `{run_dir}`\n\n{n_cases} cases"
        f"{f'; failed: {failed}' if failed else ''}. Prompt: each label's tight box grown by "
        f"{cfg.eval_margin} px of a 256² slice (scaled to the slice) on every slice that holds "
        f"it (MedSAM/DB-SAM protocol); 3-D Dice (1 when both masks are empty), the authors' "
        f"normalised surface Dice `nsd_paper` (256² grid, unit spacing, tolerance 1 voxel) and "
        f"ours `nsd_2mm` (native grid and spacing, tolerance {cfg.nsd_tolerance_mm} mm), mean "
        f"± std over cases; `sam` is vanilla SAM with the weights DB-SAM started from (vanilla "
        f"LiteMedSAM for a `litemedsam` run). Challenge `.npz` cases are prompted with their "
        f"own boxes (MedSAM-on-Laptop protocol) and their `nsd_2mm` is the challenge's NSD "
        f"(area-weighted surface elements, the file's spacing).\n\n"
        f"{summary_md}\n\n"
        f"Per case and label: `cases.csv`."
        + ("\n\n![overlays](overlays.png)\n" if overlays else "\n")
        + (f"\nFailed cases:{failed_md}\n" if failed_md else ""))


def evaluate_run(run_dir: Path, images: Path, labels: Path, out: Path, *,
                 baseline: bool = False, channel: int | None = None,
                 progress: bool | str = True, shard=None) -> Path:
    """``medcl dbsam evaluate``: per case and label 3-D Dice and NSD (batch-safe, resumable),
    summary table, overlay PNG; vanilla SAM with the same weights as the baseline column.

    Writes into ``out``: ``cases.csv`` (one row per method, case and label), ``summary.csv``
    and ``summary.md`` (mean ± std per method and label), ``overlays.png``, ``report.md`` and
    ``config.yaml`` (what the results depend on). No ``metrics.csv``: that name is kept for
    the per-epoch training log.

    ``channel``: channel of 4-D inputs (default: the run's). Rerunning into the same ``out``
    scores only cases not yet scored and retries failed ones; the inputs (model, folders,
    options) must be the same, else the folder is refused. The outputs then equal those of one
    uninterrupted run. A second process evaluating into the same ``out`` is refused while the
    first runs (a lock file; one left by a killed process is taken over).

    ``progress``: ``True`` (``"auto"``) for a bar on a terminal and one plain line per case
    otherwise (a log file), ``False`` (``"quiet"``) for neither, or a mode of
    :data:`medcl.io.units.PROGRESS_MODES`. ``shard`` (a :class:`medcl.io.units.Shard`): this
    process's share of the (method, case) units (default: from torchrun/SLURM, else all); each
    shard writes its rows beside ``cases.csv``, which holds the merged table.
    """
    from dataclasses import replace

    from medcl.io import RunFolder, write_text
    from medcl.io.cases import check_signature

    from .evaluate import summary_table

    cases = _cases(images, labels)
    cfg, model = load_run(run_dir)
    if channel is not None:
        cfg = replace(cfg, channel=channel)
    nets = {"dbsam": model}
    if baseline:
        nets["sam"] = load_baseline(run_dir, cfg)
    signature = _evaluation_signature(run_dir, images, labels, baseline, cfg)
    csv_path = Path(out) / "cases.csv"
    check_signature(csv_path, signature)  # before anything is written into `out`
    folder = RunFolder.create(out)  # an existing folder is reused: cases.csv resumes
    folder.write_config(signature)
    mode = progress if isinstance(progress, str) else ("auto" if progress else "quiet")
    table = _score_cases(cases, nets, cfg, csv_path, signature, progress=mode, shard=shard)
    _write_csv_if_changed(csv_path, table)
    summary_md = folder.write_table("summary", summary_table(table))
    write_text(folder.root / "summary.md", summary_md + "\n")
    overlays = _write_overlays(folder, table, cases, cfg, nets)
    folder.write_report(_evaluation_report(run_dir, len(cases), cfg, table, summary_md,
                                           overlays))
    return folder.report_path

"""Run folders of the PI-RADS app: train (dual path + single-path baseline), evaluate per zone."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pandas as pd

from .config import PiradsConfig
from .labels import IDENTITY, LabelMap
from .zones import ZONES


def train_run(cfg: PiradsConfig, images: Path, labels: Path, out: Path, *,
              unlabelled: Path | None = None, baseline: bool = True,
              progress: bool = True, label_map: LabelMap = IDENTITY) -> Path:
    """``medcl pirads train``: read and check every case first, then train and report.

    ``label_map`` turns the label files' codes into ours (:mod:`medcl.pirads.labels`). A folder that
    already holds a trained model is refused (its sub-models would go stale)."""
    from medcl.io import ConfigError, RunFolder

    from .train import list_cases, load_cases, train_dual, train_single

    held = [p for p in (Path(out) / "model.pt", Path(out) / "unet" / "model.pt") if p.exists()]
    if held:
        raise ConfigError("already holds a trained run", path=out,
                          fix="train into another --out, or delete the folder to retrain")
    cases = list_cases(images, labels)
    X, Y = load_cases(cfg, cases, with_labels=True, label_map=label_map)
    XU = None
    if unlabelled is not None:
        XU, _ = load_cases(cfg, list_cases(unlabelled), with_labels=False)
    folder = RunFolder.create(out)
    folder.write_config(cfg, seed=cfg.seed, extra={
        "images": str(images), "labels": str(labels),
        "unlabelled": None if unlabelled is None else str(unlabelled),
        "cases": [c for c, _, _ in cases], "n_unlabelled": 0 if XU is None else len(XU),
        "baseline": baseline, "label_map": label_map.origin,
        "label_codes": {int(k): int(v) for k, v in label_map.mapping.items()}})
    model, histories = train_dual(cfg, X, Y, XU, folder.root, progress=progress,
                                   baseline=baseline)
    folder.save_model(model.state_dict())
    missing = [name for code, name in ZONES.items() if code not in label_map.zones]
    labels_note = f"Labels: {label_map.origin}" + (
        f" (not labelled: {', '.join(missing)}; the network learns them as absent)"
        if missing else "")
    rows = [{"model": "dual-path", "stage": stage, **r}
            for stage, hist in histories.items() for r in hist]
    if baseline:
        unet, hist = train_single(cfg, X, Y, folder.root / "unet", progress=progress)
        RunFolder.create(folder.root / "unet").save_model(unet.state_dict())
        rows += [{"model": "unet", "stage": "single", **r} for r in hist]
    folder.write_metrics(pd.DataFrame(rows))
    last = {k: v for k, v in histories["stage1"][-1].items() if k not in ("epoch", "step", "lr")}
    folder.write_report(
        f"# PI-RADS zones run\n\n{len(cases)} labelled cases"
        f"{'' if XU is None else f', {len(XU)} unlabelled'}; crop {cfg.crop} at {cfg.spacing} "
        f"mm; stage 1 {cfg.epochs} epochs, stage 2 (co-training) {cfg.cotrain_epochs} epochs"
        f"{'; single-path MONAI baseline with the same budget in `unet/`' if baseline else ''}."
        f" {labels_note}."
        f"\n\nLast stage-1 epoch: "
        + ", ".join(f"{k} {v:.4g}" for k, v in last.items()) + ".\n\n`model.pt` holds the "
        "epoch of best validation Dice of the last stage (`last.pt` its last epoch; cases held "
        "out for validation in `split.json`). Losses and validation Dice per epoch: "
        "`metrics.csv`. Segment with `medcl pirads segment --model " + str(out) + " ...`.\n")
    return folder.report_path


def load_run(run_dir: Path, kind: str = "dual"):
    """(config, model) of a train run; ``kind`` = ``dual`` or ``unet`` (the baseline)."""
    from medcl.io import ConfigError, RunFolder

    from .train import build_model

    folder = RunFolder(Path(run_dir))
    raw = folder.read_config().get("config")
    if not raw or "groups" not in raw:
        raise ConfigError("config.yaml is not a PI-RADS run's", path=folder.config_path,
                          fix="pass the folder written by `medcl pirads train --out RUN`")
    known = {f.name for f in fields(PiradsConfig)}
    cfg = PiradsConfig(**{k: v for k, v in raw.items() if k in known})
    sub = folder if kind == "dual" else RunFolder(folder.root / "unet")
    if kind != "dual" and not sub.model_path.is_file():
        raise ConfigError("the run has no single-path UNet baseline (trained with --no-baseline)",
                          path=folder.root, fix="drop --baseline unet, or train a run without "
                          "--no-baseline into a new --out")
    model = build_model(cfg, "dual" if kind == "dual" else "single")
    try:
        model.load_state_dict(sub.load_model())
    except RuntimeError as err:  # weights of another network version (layers renamed/added)
        raise ConfigError(f"the saved weights do not fit this version's network ({err})"
                          .splitlines()[0], path=sub.root,
                          fix="train the run again with `medcl pirads train`") from err
    return cfg, model.eval()


def evaluate_run(run_dir: Path, images: Path, labels: Path, out: Path, *,
                 baseline: bool = False, label_map: LabelMap = IDENTITY,
                 channel: int | None = None, progress: bool | str = False,
                 shard=None) -> Path:
    """``medcl pirads evaluate``: per-case, per-zone Dice / MASD / HD95 (batch-safe, resumable)
    in ``cases.csv`` and a summary (``summary.csv``, and in ``report.md`` next to the Meyer et
    al. 2019 anchors: their data, not ours); ``metrics.csv`` stays the name of a training run's
    per-epoch log and is not written here. Zones that ``label_map`` does not label are reported
    as "not labelled" (NaN), not as Dice 0.

    A rerun into ``out`` skips the cases already scored and retries the failed ones; an ``out``
    holding an evaluation of another model, data or options is refused before anything is
    written, as are a missing baseline and a batch in which every case failed (after the
    report is written), and a second process writing the same ``out`` (a lock file; one left
    by a killed process is taken over).

    ``progress``: ``True`` (``"auto"``) for a bar of cases on a terminal and one plain line
    when a case starts and ends otherwise (a log file), ``False`` (``"quiet"``) for neither.
    ``shard`` (a :class:`medcl.io.units.Shard`): this process's share of the cases (default:
    from torchrun/SLURM, else all); each shard writes its rows beside ``cases.csv``, which
    holds the merged table."""
    from medcl.io import InputFileError, RunFolder, get_card
    from medcl.io.cases import check_signature
    from medcl.io.units import Shard

    from .infer import predict_zones
    from .metrics import evaluate_cases, summary_table
    from .train import list_cases

    cases = list_cases(images, labels)
    kinds = (("dual", "dual-path"), ("unet", "single-path UNet"))[: 1 + baseline]
    models = {kind: load_run(run_dir, kind) for kind, _ in kinds}  # fails before any output
    signature = {"model": str(Path(run_dir).resolve()), "images": str(Path(images).resolve()),
                 "labels": str(Path(labels).resolve()), "baseline": baseline,
                 "channel": channel, "label_map": label_map.origin,
                 "label_codes": {str(k): int(v) for k, v in label_map.mapping.items()}}
    check_signature(Path(out) / "cases.csv", signature)
    mode = progress if isinstance(progress, str) else ("auto" if progress else "quiet")
    shard = Shard.from_environment() if shard is None else shard
    folder = RunFolder.create(out)
    folder.write_config(signature)
    table = None
    for kind, method in kinds:
        cfg, model = models[kind]
        # the cases' progress replaces the sliding window's (one display at a time)
        table = evaluate_cases([(c, i, lab) for c, i, lab in cases],
                               lambda v, m=model, c=cfg: predict_zones(m, c, v),
                               folder.root, method=method, label_map=label_map,
                               channel=channel, signature=signature, progress=mode,
                               shard=shard)
    summary = summary_table(table)
    summary_md = folder.write_table("summary", summary)  # per case: cases.csv (evaluate_cases)
    anchors = get_card("prostatex_zones_meyer2019").reference_results
    anchor_md = "\n".join(f"- {r['method']}: {r['metric']} {r['value']} ({r.get('split', '')})"
                          for r in anchors) or "- none recorded"
    failed = sorted(table.loc[table.status == "failed", "case_id"].unique().tolist())
    missing = [name for code, name in ZONES.items() if code not in label_map.zones]
    labels_note = f"Labels: {label_map.origin}" + (
        f"; not labelled: {', '.join(missing)} (NaN, shown as 'not labelled'; predictions of "
        "them are scored as TZ)" if missing else "")
    folder.write_report(
        f"# PI-RADS zones evaluation of `{run_dir}`\n\n{len(cases)} cases"
        f"{f'; failed: {failed}' if failed else ''}. Dice, MASD (mm, symmetric) and HD95 (mm) "
        f"per zone, mean ± std over cases (per case: `cases.csv`). A zone in the truth but "
        f"not in the prediction is missed (`n_missed`; `n_spurious` the reverse): Dice 0, and "
        f"`masd` / `hd95` count it at the scan's field-of-view diagonal, so a mean never "
        f"improves by missing a structure; `masd_present` / `hd95_present` average only the "
        f"cases where both maps hold the zone. {labels_note}.\n\n"
        f"{summary_md}\n\n"
        f"Anchors from the data card (Meyer et al. 2019 on ProstateX; their data, not ours):\n"
        f"{anchor_md}\n")
    if failed and set(failed) >= {c for c, _, _ in cases}:
        first = table.loc[table.status == "failed", "error"].iloc[0]
        raise InputFileError(f"every case failed (first error: {first})",
                             path=folder.root / "cases.csv",
                             fix="fix the files named in its error column and rerun (failed "
                             "cases are retried)")
    return folder.report_path

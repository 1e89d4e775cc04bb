"""Card-driven batch evaluation: cases from a data card's layout, many workers and ranks, resume.

``medcl evaluate --card ID --root DIR --app NAME`` finds the app's :class:`Evaluator` through the
``medcl.evaluators`` entry-point group; the evaluator turns the card and ``--root`` into
:class:`Case` objects (or refuses with one line naming what is missing and where the card says
to get it), and scores one case at a time. Everything else is here and shared by every app:

- cases run through :func:`medcl.io.units.run_units`: sharded over ``--workers`` processes and
  over ranks (``RANK``/``WORLD_SIZE`` or ``SLURM_PROCID``/``SLURM_NTASKS``, read the way
  Lightning Fabric reads them), each case's rows written atomically as it ends, a deterministic
  merge into ``cases.csv`` (case order, whichever rank writes last), resume after a kill, a
  corrupt case recorded as failed while the rest finish, a progress bar with ETA;
- per-case arrays for the report (image, prediction, reference; small, ``cases/<id>.npz``)
  written atomically by the worker that scored the case;
- ``summary.csv`` / ``summary.md`` (mean and std of the evaluator's score columns) and
  ``report.html`` (:mod:`medcl.io.report`), which also shows the card's published numbers.

The scoring of a case happens in :func:`score_unit`, a module-level function, so worker
processes can run it; each process loads the evaluator and the model once
(:func:`_state`).

Departures from :func:`run_units`' defaults: Lightning Fabric's cluster environments are asked
for the rank only when a launcher variable (``WORLD_SIZE``, ``SLURM_NTASKS``, ``SLURM_PROCID``)
is set, since importing Lightning costs seconds per command. Under several ranks every rank
rebuilds ``report.html`` when its share ends, so the page is whole once the last rank ends
(``medcl report EVAL`` rebuilds it at any time).
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ConfigError, InputFileError

__all__ = ["THRESHOLD", "Case", "CaseArtefacts", "Evaluator", "card_root_error", "load_evaluator",
           "run_evaluation", "score_unit", "write_phantom_cases"]

GROUP = "medcl.evaluators"


@dataclass(frozen=True)
class Case:
    """One unit of an evaluation: an id, its input files (role -> path) and its split."""

    case_id: str
    files: Mapping[str, str] = field(default_factory=dict)
    split: str = "all"


@dataclass
class CaseArtefacts:
    """What the report shows of a case, saved by the process that scored it.

    ``image`` ``(X, Y, Z)`` float, ``pred`` and ``truth`` ``(X, Y, Z)`` integer label maps, all in
    RAS voxel order (``Canonical.forward``), ``spacing`` in mm.
    """

    folder: Path
    case_id: str

    def save(self, image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None,
             spacing: Sequence[float] = (1.0, 1.0, 1.0), max_side: int = 96) -> Path:
        img = np.asarray(image, np.float32)
        step = max(1, int(np.ceil(max(img.shape) / max_side)))
        sl = (slice(None, None, step),) * 3
        lo, hi = np.percentile(img, [1, 99]) if img.size else (0.0, 1.0)
        img8 = np.clip((img - lo) / max(hi - lo, 1e-6) * 255, 0, 255).astype(np.uint8)
        arrays = {"image": img8[sl], "pred": np.asarray(pred, np.uint8)[sl],
                  "spacing": np.asarray(spacing, np.float32) * step}
        if truth is not None:
            arrays["truth"] = np.asarray(truth, np.uint8)[sl]
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.case_id}.npz"
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        return path


@dataclass
class Evaluator:
    """An app's evaluation of a card's cases (the object a ``medcl.evaluators`` entry names).

    Attributes
    ----------
    name : str
        The app.
    columns : sequence of str
        Result columns of ``cases.csv`` besides ``case_id``, ``split``, ``status``, ``error``
        (keep timings out: the table must be the same after a resume).
    score_columns : sequence of str
        The columns summarised (mean, std) and compared with the card's published numbers.
    find_cases : callable
        ``find_cases(card, root, options) -> list[Case]``; raises :class:`InputFileError`
        (see :func:`card_root_error`) when the card's layout is not under ``root``.
    load : callable
        ``load(model, options) -> state`` (a trained run, loaded once per process).
    score : callable
        ``score(state, case, artefacts) -> list of dict`` (rows; may call ``artefacts.save``).
    needs_model : bool
        Whether ``--model`` is required.
    cards : sequence of str
        Card ids (or ``"msd_*"``-style prefixes ending in ``*``) the evaluator knows.
    """

    name: str
    columns: Sequence[str]
    score_columns: Sequence[str]
    find_cases: Callable[[Any, Path | None, dict], list[Case]]
    load: Callable[[Path | None, dict], Any]
    score: Callable[[Any, Case, CaseArtefacts], list[dict]]
    needs_model: bool = True
    cards: Sequence[str] = ()

    def knows(self, card_id: str) -> bool:
        return any(card_id == c or (c.endswith("*") and card_id.startswith(c[:-1]))
                   for c in self.cards)


def card_root_error(card: Any, root: Path | None, missing: str) -> InputFileError:
    """The one line for a card whose data is not under ``--root``: what is missing and where
    the card says to get it."""
    where = card.source.get("url", "") if isinstance(card.source, Mapping) else ""
    step = (card.access.get("steps") or [""])[0] if isinstance(card.access, Mapping) else ""
    fix = f"get it as the card says ({step.strip() or where}); then pass its folder to --root"
    if root is None:
        return InputFileError(f"card {card.id} needs --root: {missing}", fix=fix)
    return InputFileError(f"no {card.id} data here: {missing}", path=root, fix=fix)


def load_evaluator(spec: str) -> Evaluator:
    """An evaluator by entry-point name (``dbsam``) or import spec (``package.module:NAME``)."""
    if ":" in spec:
        module, _, attr = spec.partition(":")
        return getattr(importlib.import_module(module), attr)
    from importlib.metadata import entry_points

    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if spec not in eps:
        raise ConfigError(f"no evaluator for app {spec!r}; installed: {sorted(eps) or 'none'}",
                          fix="choose one with --app (see `medcl evaluate --help`)")
    return eps[spec].load()


_STATE: dict[tuple, tuple[Evaluator, Any]] = {}


def _state(spec: str, model: str | None, options: tuple) -> tuple[Evaluator, Any]:
    key = (spec, model, options)
    if key not in _STATE:
        ev = load_evaluator(spec)
        _STATE.clear()
        _STATE[key] = (ev, ev.load(None if model is None else Path(model), dict(options)))
    return _STATE[key]


def score_unit(key: dict[str, Any], item: tuple) -> list[dict[str, Any]]:
    """Score one case (the unit function :func:`run_units` runs, in this or a worker process).

    ``item`` = ``(spec, model, options, case, artefact folder)``.
    """
    spec, model, options, case, folder = item
    ev, state = _state(spec, model, options)
    rows = ev.score(state, case, CaseArtefacts(Path(folder), case.case_id))
    return [{"split": case.split, **r} for r in rows]


def _options_key(options: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, v if not isinstance(v, list) else tuple(v))
                        for k, v in options.items()))


def run_evaluation(
    *,
    spec: str,
    card: Any,
    root: Path | None,
    out: Path,
    model: Path | None = None,
    split: str = "all",
    limit: int | None = None,
    workers: int = 1,
    options: Mapping[str, Any] | None = None,
    progress: str = "auto",
    shard: Any = None,
    report: bool = True,
) -> dict[str, Any]:
    """Evaluate ``card``'s cases under ``root`` with evaluator ``spec`` into the folder ``out``.

    Writes ``cases.csv`` (one or more rows per case; failed cases have ``status=failed`` and
    the error), ``cases.inputs.json`` (what the table is computed from: a rerun with other
    inputs is refused), ``config.yaml``, ``summary.csv``/``summary.md``, ``cases/<id>.npz`` and
    ``report.html``. A rerun resumes (cases already scored are skipped, failed ones retried).

    Returns
    -------
    dict
        ``table`` (pandas), ``summary`` (pandas), ``failed`` (case ids), ``report`` (path or None).
    """
    from .runs import RunFolder
    from .units import Shard, run_units

    ev = load_evaluator(spec)
    options = dict(options or {})
    if ev.needs_model and model is None:
        raise ConfigError(f"the {ev.name} evaluator needs a trained model",
                          fix="pass --model RUN (a run folder of the app's train command)")
    if model is not None and not Path(model).exists():
        raise InputFileError("model run folder not found", path=model, fix="check the path")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need 1 or more")
    cases = ev.find_cases(card, None if root is None else Path(root), options)
    if split != "all":
        cases = [c for c in cases if c.split == split]
        if not cases:
            raise ConfigError(f"no case of split {split!r} in card {card.id}",
                              fix="pass --split all, or a split the card defines")
    if limit is not None:
        cases = cases[: max(0, limit)]
    if not cases:
        raise InputFileError(f"no case found for card {card.id}", path=root,
                             fix="check --root against the card's layout")
    model_s = None if model is None else str(Path(model).resolve())
    signature = {"app": ev.name, "card": card.id, "root": None if root is None else
                 str(Path(root).resolve()), "model": model_s, "split": split, "limit": limit,
                 "options": {k: options[k] for k in sorted(options)}}
    out = Path(out)
    csv_path = out / "cases.csv"
    from .units import check_signature

    check_signature(csv_path, signature)
    folder = RunFolder.create(out)
    folder.write_config({**signature, "workers": workers, "n_cases": len(cases)})
    art = out / "cases"
    item_spec = spec
    opts = _options_key(options)
    units = [({"case_id": c.case_id}, (item_spec, model_s, opts, c, str(art))) for c in cases]
    if shard is None:  # Fabric's environments (a slow import) only when a launcher set one
        launched = any(v in os.environ for v in ("WORLD_SIZE", "SLURM_NTASKS", "SLURM_PROCID"))
        shard = Shard.from_environment() if launched else Shard()
    _STATE.clear()  # a model reloaded per evaluation (a retrained run at the same path)
    t0 = time.perf_counter()
    result = run_units(units, score_unit, csv_path,
                       columns=["case_id", "split", *ev.columns], signature=signature,
                       retry_failed=True, progress=progress, what="case", shard=shard,
                       workers=workers)
    seconds = time.perf_counter() - t0
    table = result.table
    summary = summarise(table, ev.score_columns)
    md = folder.write_table("summary", summary)
    from .atomic import write_text

    write_text(out / "summary.md", md + "\n")
    failed = sorted(table.loc[table.status == "failed", "case_id"].astype(str).unique())
    path = None
    if report:
        from .report import write_report

        path = write_report(out)
    return {"table": table, "summary": summary, "failed": failed, "report": path,
            "seconds": seconds, "ran": result.ran, "skipped": result.skipped}


def summarise(table: Any, score_columns: Sequence[str]) -> Any:
    """Mean and std (over cases scored ok) of each score column, with counts."""
    import pandas as pd

    ok = table[table.status == "ok"]
    rows = []
    for col in score_columns:
        vals = pd.to_numeric(ok[col], errors="coerce").dropna() if col in ok else pd.Series([])
        rows.append({"metric": col, "mean": float(vals.mean()) if len(vals) else float("nan"),
                     "std": float(vals.std(ddof=0)) if len(vals) else float("nan"),
                     "n_rows": int(len(vals)), "n_cases": int(ok.case_id.nunique()),
                     "n_failed": int(table[table.status == "failed"].case_id.nunique())})
    return pd.DataFrame(rows)


# -- a model-free evaluator on NIfTI folder pairs (benchmarks, tests, smoke checks) --------------
def _threshold_cases(card: Any, root: Path | None, options: dict) -> list[Case]:
    from .cases import list_cases

    if root is None or not (root / "imagesTr").is_dir() or not (root / "labelsTr").is_dir():
        raise card_root_error(card, root, "imagesTr/ and labelsTr/ (nnU-Net/MSD layout)")
    found = list_cases(root / "imagesTr", root / "labelsTr")
    return [Case(cid, {"image": str(img), "label": str(lab)},
                 split="test" if i % 5 == 4 else "train")
            for i, (cid, img, lab) in enumerate(found)]


def _threshold_load(model: Path | None, options: dict) -> dict:
    return {"threshold": float(options.get("threshold", 0.5)),
            "sleep": float(os.environ.get("MEDCL_EVAL_SLEEP", "0") or 0)}


def _threshold_score(state: dict, case: Case, art: CaseArtefacts) -> list[dict]:
    from .nifti import Canonical, read_labels, read_volume

    vol = read_volume(case.files["image"])
    lab = read_labels(case.files["label"], like=vol)
    if state["sleep"]:
        time.sleep(state["sleep"])
    pred = (vol.data > state["threshold"]).astype(np.uint8)
    truth = lab.data > 0
    inter = int(np.logical_and(pred, truth).sum())
    total = int(pred.sum()) + int(truth.sum())
    can = Canonical.of(vol)
    art.save(can.forward(vol.data), can.forward(pred), can.forward(truth.astype(np.uint8)),
             can.zooms)
    return [{"label": 1, "dice": 1.0 if total == 0 else 2 * inter / total,
             "pred_voxels": int(pred.sum()), "truth_voxels": int(truth.sum())}]


THRESHOLD = Evaluator(
    name="threshold", columns=["label", "dice", "pred_voxels", "truth_voxels"],
    score_columns=["dice"], find_cases=_threshold_cases, load=_threshold_load,
    score=_threshold_score, needs_model=False, cards=["msd_*"])
"""Image > threshold as the prediction, scored by Dice: exercises the whole evaluation path
(layout, workers, resume, report) without a model (``--app medcl.io.evaluate:THRESHOLD``)."""


def write_phantom_cases(root: str | os.PathLike[str], n: int, *, size: int = 24,
                        seed: int = 0, prefix: str = "case") -> Path:
    """``n`` NIfTI phantoms in the MSD layout (``imagesTr/``, ``labelsTr/``): a bright
    ellipsoid (label 1) in noise, with a mildly oblique affine. For tests and benchmarks."""
    from .nifti import Volume, write_volume

    root = Path(root)
    (root / "imagesTr").mkdir(parents=True, exist_ok=True)
    (root / "labelsTr").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(size)] * 3, indexing="ij"), -1).astype(float)
    aff = np.diag([1.0, 1.2, 2.0, 1.0])
    aff[0, 1] = 0.1
    for i in range(n):
        centre = rng.uniform(0.35, 0.65, 3) * size
        radii = rng.uniform(0.15, 0.3, 3) * size
        mask = (((grid - centre) / radii) ** 2).sum(-1) <= 1
        image = (mask * 1.0 + rng.normal(0, 0.3, mask.shape)).astype(np.float32)
        like = Volume.from_array(image, aff)
        write_volume(root / "imagesTr" / f"{prefix}_{i:03d}.nii.gz", image, like)
        write_volume(root / "labelsTr" / f"{prefix}_{i:03d}.nii.gz", mask.astype(np.uint8),
                     like)
    return root

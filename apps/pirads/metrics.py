"""Per-zone evaluation of prostate zone segmentations (PZ, TZ, DPU, AFS) with MONAI metrics.

The PI-RADS dual-path paper (Das, Ghosh, Stober, arXiv:2309.12970) and its baseline (Meyer et
al., ISBI 2019) report per-zone Dice and surface distances; this module computes Dice, mean
symmetric surface distance (MASD) and the 95th-percentile Hausdorff distance (HD95), both in
mm, on the input scan's voxel grid, and runs a resumable batch evaluation over many cases.

Conventions for a zone missing from one or both maps (see :func:`zone_metrics`):

- absent in both prediction and truth: Dice NaN, MASD NaN, HD95 NaN (nothing to score; NaN
  keeps such cases out of the means instead of inflating them with a free 1.0);
- absent in exactly one (``missed``: in the truth, not predicted; ``spurious``: predicted, not
  in the truth): Dice 0, and MASD and HD95 scored as the largest distance in the scan's field
  of view, the diagonal of the volume in mm (``sqrt(sum((shape * spacing) ** 2))``), so that a
  mean never improves by missing a structure. A distance to nothing is undefined, and MONAI's
  surface metrics return NaN or inf there (MONAI 1.x warns "may result in nan/inf
  distance"); the penalty is the worst distance the scan allows, rather than a fixed
  constant, so that it scales with the field of view actually scored. Both conventions are
  kept, labelled: ``masd`` / ``hd95`` are the penalised values (the default),
  ``masd_present`` / ``hd95_present`` the distances over zones present in both maps only
  (NaN when either map lacks the zone: the optimistic convention used before, which drops a
  missed zone from the mean). The summary counts the missed and spurious zones
  (``n_missed``, ``n_spurious``);
- not labelled by the dataset at all (e.g. DPU and AFS in Prostate158 or the Decathlon's
  Task05, see :mod:`medcl.pirads.labels`): Dice, MASD and HD95 NaN with ``labelled`` false, shown
  as "not labelled" in the summary; the prediction of such zones is scored as TZ, because these
  two-zone datasets draw the urethra and anterior stroma inside their central gland (TZ) label
  (as their data cards say). Such zones are never counted as missed.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
)

from medcl.io.nifti import Volume
from medcl.io.units import Shard, run_units

from .labels import IDENTITY, LabelMap, read_case
from .zones import ZONES

__all__ = ["CASE_COLUMNS", "ZONES", "evaluate_cases", "fov_diagonal", "summary_table",
           "zone_metrics"]

CASE_COLUMNS: list[str] = [
    "method",
    "case_id",
    "zone",
    "zone_name",
    "dice",
    "masd",
    "hd95",
    "masd_present",
    "hd95_present",
    "missed",
    "spurious",
    "pred_voxels",
    "truth_voxels",
    "labelled",
    "status",
    "error",
]
"""Columns of ``cases.csv`` written by :func:`evaluate_cases` (one row per case x zone)."""


def fov_diagonal(shape: Sequence[int], spacing: Sequence[float]) -> float:
    """The largest distance in a scan's field of view: the diagonal of the volume in mm.

    Parameters
    ----------
    shape : sequence of 3 int
        Voxels along X, Y, Z.
    spacing : sequence of 3 float
        Voxel size in mm.

    Returns
    -------
    float
        ``sqrt(sum((shape * spacing) ** 2))``, the penalty MASD / HD95 of a missed or spurious
        zone (see the module docstring).
    """
    return float(np.sqrt(np.sum((np.asarray(shape, float) * np.asarray(spacing, float)) ** 2)))


def zone_metrics(
    pred: np.ndarray,
    truth: np.ndarray,
    spacing: Sequence[float],
    labelled: Sequence[int] | None = None,
) -> list[dict]:
    """Dice, MASD and HD95 of each zone in :data:`ZONES`.

    Parameters
    ----------
    pred, truth : numpy.ndarray, shape (X, Y, Z)
        Integer label maps on the same voxel grid (0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS).
    spacing : sequence of 3 floats
        Voxel size in mm along X, Y, Z (e.g. ``nibabel`` ``header.get_zooms()[:3]``).
    labelled : sequence of int, optional
        Zones the truth labels (default: all four). The others get NaN metrics and
        ``labelled=False``; predicted voxels of them count as TZ when TZ is labelled.

    Returns
    -------
    list of dict
        One dict per zone with ``zone``, ``zone_name``, ``dice``, ``masd`` (mm), ``hd95`` (mm),
        ``masd_present``, ``hd95_present`` (mm), ``missed``, ``spurious``, ``pred_voxels``,
        ``truth_voxels`` and ``labelled``. Dice is MONAI's ``compute_dice``; MASD is
        ``compute_average_surface_distance(symmetric=True)``, the mean over the surface
        voxels of both maps of the distance to the other surface; HD95 is
        ``compute_hausdorff_distance(percentile=95)``, the larger of the two directed 95th
        percentiles. A zone in both maps has ``masd == masd_present`` (likewise HD95). A zone
        in exactly one map is ``missed`` (truth only) or ``spurious`` (prediction only): Dice 0,
        ``masd`` and ``hd95`` equal to :func:`fov_diagonal` of the grid, ``masd_present`` and
        ``hd95_present`` NaN. A zone in neither map, or not labelled, is NaN throughout.
    """
    pred = np.asarray(pred)
    truth = np.asarray(truth)
    if pred.shape != truth.shape or pred.ndim != 3:
        raise ValueError(
            f"pred and truth must be 3D maps of one shape, got {pred.shape} and {truth.shape}"
        )
    spacing_t = tuple(float(s) for s in spacing)
    if len(spacing_t) != 3 or not all(s > 0 for s in spacing_t):
        raise ValueError(f"spacing must be 3 positive values in mm, got {spacing!r}")
    zones = set(ZONES) if labelled is None else {int(z) for z in labelled}
    missing = sorted(set(ZONES) - zones)
    if missing and 2 in zones:
        pred = np.where(np.isin(pred, missing), 2, pred)
    worst = fov_diagonal(truth.shape, spacing_t)
    nan = float("nan")
    rows: list[dict] = []
    for label, name in ZONES.items():
        p = pred == label
        t = truth == label
        n_p, n_t = int(p.sum()), int(t.sum())
        row = {
            "zone": label,
            "zone_name": name,
            "dice": nan,
            "masd": nan,
            "hd95": nan,
            "masd_present": nan,
            "hd95_present": nan,
            "missed": False,
            "spurious": False,
            "pred_voxels": n_p,
            "truth_voxels": n_t,
            "labelled": label in zones,
        }
        if label not in zones:  # nothing to compare with: NaN, not a free 0
            pass
        elif n_p and n_t:
            # (B=1, C=1, X, Y, Z) one-channel binary maps of this zone
            yp = torch.from_numpy(p[None, None].astype(np.float32))
            yt = torch.from_numpy(t[None, None].astype(np.float32))
            row["dice"] = float(compute_dice(yp, yt, include_background=True)[0, 0])
            with warnings.catch_warnings():
                # MONAI 1.5+ warns about an argument its own surface code passes internally
                warnings.simplefilter("ignore", FutureWarning)
                row["masd"] = row["masd_present"] = float(compute_average_surface_distance(
                    yp, yt, include_background=True, symmetric=True, spacing=spacing_t)[0, 0])
                row["hd95"] = row["hd95_present"] = float(compute_hausdorff_distance(
                    yp, yt, include_background=True, percentile=95, spacing=spacing_t)[0, 0])
        elif n_p or n_t:  # in one map only: Dice 0, the worst distance the scan allows
            row.update(dice=0.0, masd=worst, hd95=worst, missed=n_t > 0, spurious=n_p > 0)
        rows.append(row)
    return rows


def evaluate_cases(
    pairs: list[tuple[str, Path, Path]],
    predict: Callable[[Volume], np.ndarray],
    out_dir: Path,
    *,
    method: str,
    retry_failed: bool = True,
    label_map: LabelMap = IDENTITY,
    channel: int | None = None,
    signature: dict | None = None,
    progress: str = "quiet",
    shard: Shard | None = None,
) -> pd.DataFrame:
    """Evaluate ``predict`` on many cases, resumably, recording one row per case x zone.

    For each ``(case_id, image, label)``: if ``out_dir/cases.csv`` already has ``ok`` rows for
    ``(method, case_id)`` the case is skipped; otherwise the case is read and checked with
    :func:`medcl.pirads.labels.read_case` (as training does: NaN, non-integer labels, geometry,
    unknown codes), ``predict(volume)`` gives a label map of the image read there (each file is
    read once) on the label file's voxel grid and
    :func:`zone_metrics` scores it with the label file's voxel spacing. Any exception
    (unreadable file, wrong shape, a failing model) turns the case into rows with
    ``status="failed"`` and the error text, and the loop goes on. The whole table is rewritten
    atomically (:func:`medcl.io.write_csv`) after every case, so an interrupted run resumes where
    it stopped: each case is a unit of :func:`medcl.io.units.run_units` (which also holds the
    folder's lock, shows progress and shards the cases).

    Parameters
    ----------
    pairs : list of (str, pathlib.Path, pathlib.Path)
        ``(case_id, image_path, label_path)``.
    predict : callable
        ``predict(volume) -> numpy.ndarray (X, Y, Z)`` integer zone labels, given the image as
        a :class:`medcl.io.nifti.Volume` (its ``path`` is the image file).
    out_dir : pathlib.Path
        Folder of ``cases.csv`` (created if missing).
    method : str
        Name of the method, stored in the ``method`` column.
    retry_failed : bool, default True
        Evaluate again cases whose earlier rows are all ``failed`` (their rows are replaced;
        the file may have been fixed since).
    label_map : pirads.labels.LabelMap, default identity
        The label files' codes -> ours; its zones are the ones scored (the rest "not
        labelled", see :func:`zone_metrics`). A code it does not know fails the case.
    channel : int, optional
        The channel of 4-D images.
    signature : dict, optional
        What the table is computed from; a table of another signature is refused (see
        :func:`medcl.io.units.check_signature`).
    progress : {"quiet", "auto", "bar", "lines"}
        ``"auto"``: a bar on a terminal, else one plain line when a case starts and one when
        it ends (for a log file); ``"quiet"``: nothing.
    shard : medcl.io.units.Shard, optional
        This process's share of the cases (``--shard K/N``); default: all of them (a caller
        that wants torchrun/SLURM ranks passes :meth:`Shard.from_environment`).

    Returns
    -------
    pandas.DataFrame
        The full table (all methods and cases in ``cases.csv``), columns :data:`CASE_COLUMNS`.
    """
    def score(cid: str, paths: tuple[Path, Path]) -> list[dict]:
        image_path, label_path = paths
        vol, lab = read_case(image_path, label_path, channel=channel, label_map=label_map)
        truth, spacing = label_map.apply(lab.data), lab.spacing
        pred = np.asarray(predict(vol))
        if pred.shape != truth.shape:
            raise ValueError(
                f"prediction shape {pred.shape} differs from label shape {truth.shape} "
                f"({os.fspath(label_path)}); predict must return the input grid"
            )
        return zone_metrics(pred, truth, spacing, label_map.zones)

    return run_units(
        [({"method": method, "case_id": str(c)}, (i, lab)) for c, i, lab in pairs],
        lambda key, paths: score(key["case_id"], paths), Path(out_dir) / "cases.csv",
        columns=CASE_COLUMNS, retry_failed=retry_failed, signature=signature,
        failed_rows=lambda err: [{"zone": z, "zone_name": n, "labelled": z in label_map.zones}
                                 for z, n in ZONES.items()],
        progress=progress, what="case", shard=Shard() if shard is None else shard,
    ).table


def _mean_std(values: pd.Series) -> tuple[float, float]:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _truthy(values: pd.Series) -> pd.Series:
    # read back from CSV the flag is a bool, a "True"/"False" string or NaN (tables written
    # before the column existed); NaN counts as labelled
    return values.map(lambda v: str(v).strip().lower() not in ("false", "0", "0.0"))


def _flag(values: pd.Series) -> pd.Series:
    # a missed / spurious flag read back from CSV: bool, "True"/"False" or NaN (NaN: not set)
    return values.map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))


#: (column, format) of the metrics :func:`summary_table` summarises, in order.
_SUMMARISED = (("dice", "{:.3f}"), ("masd", "{:.2f}"), ("hd95", "{:.2f}"),
               ("masd_present", "{:.2f}"), ("hd95_present", "{:.2f}"))


def summary_table(cases: pd.DataFrame) -> pd.DataFrame:
    """Summarise a case table per method x zone.

    Parameters
    ----------
    cases : pandas.DataFrame
        The table of :func:`evaluate_cases` (columns :data:`CASE_COLUMNS`).

    Returns
    -------
    pandas.DataFrame
        One row per ``(method, zone)`` with ``<metric>_mean`` and ``<metric>_std`` for
        ``dice``, ``masd``, ``hd95`` (missed and spurious zones scored with the field-of-view
        diagonal, the default) and ``masd_present``, ``hd95_present`` (zones present in both
        maps only), over the ``ok`` rows (NaN values, i.e. undefined metrics, left out; sample
        std, 0 for a single value); the same as text ``"mean ± std"`` in columns named after
        the metric (``"not labelled"`` for a zone the dataset does not label, ``"n/a"`` when
        undefined in every case); and the counts ``n_missed`` (cases whose truth has the zone
        and the prediction not), ``n_spurious`` (the reverse), ``n_ok`` and ``n_failed``.
        A table written before the penalised convention existed has no ``missed`` column:
        its ``masd`` / ``hd95`` are then the present-only values and the counts are 0.
    """
    out: list[dict] = []
    if cases.empty:
        return pd.DataFrame(out)
    for (method, zone), grp in cases.groupby(["method", "zone"], sort=True):
        ok = grp[grp["status"] == "ok"]
        row: dict = {
            "method": method,
            "zone": int(zone),
            "zone_name": ZONES.get(int(zone), str(zone)),
        }
        unlabelled = "labelled" in grp and not ok.empty and not _truthy(ok["labelled"]).any()
        for metric, fmt in _SUMMARISED:
            mean, std = _mean_std(ok[metric] if metric in ok else pd.Series(dtype=float))
            row[f"{metric}_mean"] = mean
            row[f"{metric}_std"] = std
            if unlabelled:
                row[metric] = "not labelled"
            else:
                row[metric] = ("n/a" if np.isnan(mean)
                               else f"{fmt.format(mean)} ± {fmt.format(std)}")
        for flag in ("missed", "spurious"):
            row[f"n_{flag}"] = int(_flag(ok[flag]).sum()) if flag in ok else 0
        row["n_ok"] = int(len(ok))
        row["n_failed"] = int((grp["status"] == "failed").sum())
        out.append(row)
    return pd.DataFrame(out)

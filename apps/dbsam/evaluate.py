"""Scoring of box-prompted segmentations: 3-D Dice and normalised surface Dice (MONAI), the
authors' way and ours.

Protocol (MedSAM / DB-SAM, Qin et al. 2024, Sec. 4): for every label of a case, every slice that
holds the label gets the label's tight box grown by 9 px of a 256² slice (scaled to the slice,
:func:`medcl.dbsam.prompts.px_at_256`) as prompt; the per-slice masks are stacked and scored in
3-D against the label. Slices without the label get no prompt, so the prompts carry the
structure's slice range: this is the published protocol, and the numbers are not comparable to
fully automatic segmentation.

Scores (one row per method, case and label in ``cases.csv``):

``dice``
    3-D Dice; 1 when both masks are empty (the authors' ``compute_dice``), 0 when exactly one
    is.
``nsd_paper``
    The authors' normalised surface Dice (their ``surface_dice.py``, DeepMind's
    ``surface-distance``, Nikolov et al. 2021): every slice resampled (nearest neighbour) to the
    256 x 256 grid their data lives on, unit spacing on all three axes, tolerance 1 voxel,
    surface elements weighted by their area (MONAI ``compute_surface_dice`` with
    ``use_subvoxels=True``, the same computation).
``nsd_2mm``
    Ours: the same surface Dice on the native grid with the scan's voxel spacing and a
    tolerance in millimetres (``nsd_tolerance_mm``, 2 mm by default), boundary voxels counted
    (MONAI's default), comparable across scans of different resolution.

Both NSDs are 1 when both masks are empty and 0 when exactly one is.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from .prompts import PROMPT_GRID

CASE_COLUMNS = ["method", "case_id", "label", "dice", "nsd_paper", "nsd_2mm", "pred_voxels",
                "truth_voxels", "slices", "seconds", "status", "error"]
"""Columns of ``cases.csv`` (one row per method x case x label)."""

SCORE_COLUMNS = ("dice", "nsd_paper", "nsd_2mm")
"""The score columns of ``cases.csv``, summarised as mean ± std."""


def _onehot(mask: np.ndarray) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask, bool))
    return torch.stack([~m, m]).float()[None]


def dice_score(pred: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks of one shape; 1 when both are empty (the DB-SAM authors'
    convention), 0 when exactly one is."""
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    total = int(p.sum()) + int(t.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(p, t).sum()) / total


def _surface_dice(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
                  tolerance: float, subvoxels: bool) -> float:
    from monai.metrics import compute_surface_dice

    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() and not t.any():
        return 1.0
    if not p.any() or not t.any():
        return 0.0
    with warnings.catch_warnings():
        # MONAI 1.5+ warns about an argument its own surface code passes internally
        warnings.simplefilter("ignore", FutureWarning)
        return float(compute_surface_dice(_onehot(p), _onehot(t), [float(tolerance)],
                                          include_background=False,
                                          spacing=[float(v) for v in spacing],
                                          use_subvoxels=subvoxels)[0, 0])


def to_prompt_grid(volume: np.ndarray) -> np.ndarray:
    """A ``(Z, H, W)`` binary volume with every slice resampled to 256 x 256 by nearest
    neighbour (cell centres), the grid of DB-SAM's data."""
    v = np.asarray(volume, bool)
    if v.ndim == 2:
        v = v[None]
    h, w = v.shape[-2:]
    rows = np.minimum(((np.arange(PROMPT_GRID) + 0.5) * h / PROMPT_GRID).astype(int), h - 1)
    cols = np.minimum(((np.arange(PROMPT_GRID) + 0.5) * w / PROMPT_GRID).astype(int), w - 1)
    return v[:, rows][:, :, cols]


def nsd_paper(pred: np.ndarray, truth: np.ndarray) -> float:
    """The DB-SAM authors' NSD: on the 256² grid, unit spacing, tolerance 1 voxel, surface
    elements weighted by area (see the module docstring). ``pred``, ``truth``: ``(Z, H, W)``
    or ``(H, W)`` binary masks of one shape."""
    return _surface_dice(to_prompt_grid(pred), to_prompt_grid(truth), (1.0, 1.0, 1.0), 1.0,
                         subvoxels=True)


def nsd_native(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
               tolerance_mm: float) -> float:
    """Our NSD: native grid, voxel ``spacing`` (mm, along the array's axes), tolerance in mm."""
    return _surface_dice(pred, truth, spacing, tolerance_mm, subvoxels=False)


def nsd_challenge(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
                  tolerance_mm: float = 2.0) -> float:
    """The MedSAM-on-Laptop challenge's NSD (its ``compute_metrics.py``: DeepMind's
    ``surface-distance``, ``compute_surface_dice_at_tolerance`` at 2 mm with the case's
    spacing): MONAI's ``compute_surface_dice`` with ``use_subvoxels=True``, the same
    area-weighted surface elements. Where ours differs: both masks empty scores 1 and exactly
    one empty 0 (the challenge's script takes the same values), and a 2-D image is a one-slice
    volume of unit spacing."""
    return _surface_dice(pred, truth, spacing, tolerance_mm, subvoxels=True)


def scores(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
           tolerance_mm: float) -> dict[str, float]:
    """``{"dice", "nsd_paper", "nsd_2mm"}`` of two binary masks ``(Z, H, W)``; ``spacing`` is
    the voxel size along the array's axes (mm)."""
    return {"dice": dice_score(pred, truth), "nsd_paper": nsd_paper(pred, truth),
            "nsd_2mm": nsd_native(pred, truth, spacing, tolerance_mm)}


def dice_nsd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
             tolerance_mm: float) -> tuple[float, float]:
    """Dice and our native-grid NSD (``nsd_2mm``) of two binary masks ``(Z, H, W)`` (or
    ``(H, W)``); ``spacing`` is the voxel size along the array's axes (mm). Both are 1 when both
    masks are empty and 0 when exactly one is."""
    return dice_score(pred, truth), nsd_native(pred, truth, spacing, tolerance_mm)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of Dice and both NSDs per method and label (and over all labels), with
    counts."""
    rows = []
    for (method, label), grp in _groups(table):
        ok = grp[grp.status == "ok"]
        row = {"method": method, "label": label}
        for col in SCORE_COLUMNS:
            vals = pd.to_numeric(ok[col], errors="coerce").dropna()
            row[col] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{col}_std"] = float(vals.std(ddof=0)) if len(vals) else float("nan")
        row["n_cases"] = int(ok.case_id.nunique())
        row["n_failed"] = int(grp[grp.status == "failed"].case_id.nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def _groups(table: pd.DataFrame):
    for method, grp in table.groupby("method", sort=False):
        labels = pd.to_numeric(grp.label, errors="coerce").astype(float)  # Int64 NA -> NaN
        for label in sorted(labels.dropna().unique()):
            yield (method, str(int(label))), grp[labels == label]
        yield (method, "all"), grp


def overlay_figure(panels: list[dict]):
    """A figure with one row per case: the slice, the truth outline, and each method's mask.

    ``panels``: dicts with ``title``, ``image (H, W) or (H, W, 3)``, ``truth (H, W) bool`` and
    ``preds {method: (H, W) bool}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = sorted({m for p in panels for m in p["preds"]})
    ncol = 1 + len(methods)
    fig, axes = plt.subplots(len(panels), ncol, figsize=(3 * ncol, 3 * len(panels)),
                             squeeze=False)
    for r, p in enumerate(panels):
        img = p["image"]
        for c, name in enumerate(["truth", *methods]):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            mask = p["truth"] if name == "truth" else p["preds"].get(name)
            if mask is not None and mask.any():
                ax.contourf(mask, levels=[0.5, 1.5], colors=["tab:red" if c else "tab:green"],
                            alpha=0.35)
                ax.contour(p["truth"], levels=[0.5], colors="lime", linewidths=0.8)
            ax.set_title(f"{p['title']}\n{name}" if c == 0 else name, fontsize=8)
            ax.axis("off")
    fig.tight_layout()
    return fig


def segment_figure_file(path, image: np.ndarray, mask: np.ndarray,
                        boxes: list[np.ndarray], title: str):
    """Write a PNG of one slice: the image, its prompt box(es) and the predicted mask (filled
    and outlined), beside the image alone; atomically (:func:`medcl.io.atomic.save_figure`).

    ``image``: ``(H, W)`` or ``(H, W, 3)`` in [0, 1]; ``mask``: ``(H, W)`` labels (0 outside);
    ``boxes``: ``xyxy`` boxes in the slice's pixels.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from medcl.io.atomic import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    for ax, overlay in zip(axes, (False, True), strict=True):
        ax.imshow(image, cmap="gray" if np.ndim(image) == 2 else None, vmin=0, vmax=1)
        for b in boxes:
            x0, y0, x1, y1 = (float(v) for v in b)
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                                   edgecolor="yellow", linewidth=1.2))
        if overlay and np.any(mask):
            ax.contourf(mask > 0, levels=[0.5, 1.5], colors=["tab:red"], alpha=0.35)
            ax.contour(mask > 0, levels=[0.5], colors="red", linewidths=0.8)
        ax.set_title(title if not overlay else "prediction", fontsize=9)
        ax.axis("off")
    fig.tight_layout()
    try:
        save_figure(path, fig)
    finally:
        plt.close(fig)

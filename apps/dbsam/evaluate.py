"""Scoring of box-prompted segmentations: 3-D Dice and normalised surface Dice (MONAI).

Protocol (MedSAM / DB-SAM, Qin et al. 2024, Sec. 4): for every label of a case, every slice that
holds the label gets the label's tight box (grown by a fixed margin) as prompt; the per-slice
masks are stacked and scored in 3-D against the label. Slices without the label get no prompt,
so the prompts carry the structure's slice range: this is the published protocol, and the
numbers are not comparable to fully automatic segmentation.

Conventions: a label absent from the prediction scores Dice 0 and NSD 0; NSD (Nikolov et al.
2021) counts the fraction of both surfaces within ``tolerance_mm`` of the other, with the slices'
voxel spacing.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

CASE_COLUMNS = ["method", "case_id", "label", "dice", "nsd", "pred_voxels", "truth_voxels",
                "slices", "seconds", "status", "error"]
"""Columns of ``cases.csv`` (one row per method x case x label)."""


def _onehot(mask: np.ndarray) -> torch.Tensor:
    m = torch.as_tensor(np.asarray(mask, bool))
    return torch.stack([~m, m]).float()[None]


def dice_nsd(pred: np.ndarray, truth: np.ndarray, spacing: Sequence[float],
             tolerance_mm: float) -> tuple[float, float]:
    """Dice and normalised surface Dice of two binary masks ``(Z, H, W)`` (or ``(H, W)``).

    ``spacing`` is the voxel size along the array's axes (mm). Both scores are NaN when both
    masks are empty and 0 when exactly one is.
    """
    from monai.metrics import compute_dice, compute_surface_dice

    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if not p.any() and not t.any():
        return float("nan"), float("nan")
    if not p.any() or not t.any():
        return 0.0, 0.0
    yp, yt = _onehot(p), _onehot(t)
    dice = float(compute_dice(yp, yt, include_background=False)[0, 0])
    with warnings.catch_warnings():
        # MONAI 1.5+ warns about an argument its own surface code passes internally
        warnings.simplefilter("ignore", FutureWarning)
        nsd = float(compute_surface_dice(yp, yt, [float(tolerance_mm)],
                                         include_background=False,
                                         spacing=[float(s) for s in spacing])[0, 0])
    return dice, nsd


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± std of Dice and NSD per method and label (and over all labels), with counts."""
    rows = []
    for (method, label), grp in _groups(table):
        ok = grp[grp.status == "ok"]
        row = {"method": method, "label": label}
        for col in ("dice", "nsd"):
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

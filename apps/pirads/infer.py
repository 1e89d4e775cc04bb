"""Segment a T2 scan: preprocess, sliding-window inference (MONAI), invert onto the input grid,
write zones (and sectors) in the input's geometry, and a JSON report with volumes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import PiradsConfig


@torch.no_grad()
def predict_zones(model: nn.Module, cfg: PiradsConfig, t2: Path, *,
                  progress: bool = False) -> np.ndarray:
    """Zone labels (0-4) of ``t2`` on its own voxel grid.

    ``progress`` shows MONAI's sliding-window progress bar (tqdm, on stderr)."""
    from monai.inferers import sliding_window_inference

    from .transforms import invert_to_input, preprocess

    data = preprocess(t2, None, spacing=cfg.spacing, crop=cfg.crop)
    x = torch.as_tensor(data["image"]).float()[None]
    model.eval()
    logits = sliding_window_inference(x, roi_size=tuple(cfg.crop), sw_batch_size=1,
                                      predictor=lambda v: model(v)["fused"], overlap=0.25,
                                      progress=progress)
    probs = torch.softmax(logits, dim=1)[0]
    return invert_to_input(probs, data).astype(np.uint8)


def segment_file(model: nn.Module, cfg: PiradsConfig, t2: Path, out: Path, *,
                 sectors: Path | None = None, report: Path | None = None,
                 progress: bool = False) -> dict:
    """Write ``out`` (zones, input geometry), optionally ``sectors`` and a JSON ``report``;
    ``progress`` shows the sliding-window progress bar."""
    from medio import refuse_overwrite, write_text
    from medio.nifti import Canonical, axial_check, read_volume

    from .sectors import sector_map, zone_volumes
    from .transforms import save_like

    for target in (out, sectors, report):
        if target is not None:
            refuse_overwrite(target, [t2])
    vol = read_volume(t2, channel=cfg.channel)
    warning = axial_check(vol)
    if warning:
        import warnings

        warnings.warn(f"{t2}: {warning}", stacklevel=2)
    zones = predict_zones(model, cfg, t2, progress=progress)
    can = Canonical.of(vol)
    canon, back, ras_spacing = can.forward(zones), can.backward, list(can.zooms)
    volumes = zone_volumes(canon, ras_spacing)
    info: dict = {"input": str(t2), "zones": str(out), "volumes_ml": volumes,
                  "labels": {"1": "PZ", "2": "TZ", "3": "DPU", "4": "AFS"},
                  "warnings": [warning] if warning else []}
    save_like(zones, t2, out)
    if sectors is not None:
        smap, table = sector_map(canon, ras_spacing)
        save_like(back(smap).astype(np.uint8), t2, sectors)
        info["sectors"] = str(sectors)
        info["sector_table"] = table[table.voxels > 0].to_dict(orient="records")
    if report is not None:
        write_text(report, json.dumps(info, indent=2, default=float) + "\n")
    return info

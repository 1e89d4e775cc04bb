"""Segment a T2 scan: read it once (:mod:`medcl.io.nifti`), preprocess, sliding-window inference
(MONAI) over the whole field of view, keep the largest connected gland, invert onto the input
grid, write zones (and sectors) in the input's geometry with :func:`medcl.io.nifti.write_volume`,
and a JSON report with volumes."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from torch import nn

from medcl.io.nifti import NIFTI_SUFFIXES, Volume

from .config import PiradsConfig
from .zones import ZONES


def keep_gland(zones: np.ndarray) -> np.ndarray:
    """Keep only the largest connected component of the gland (labels > 0) of a zone map;
    everything else becomes background (MONAI ``KeepLargestConnectedComponent``)."""
    from monai.transforms import KeepLargestConnectedComponent

    keep = KeepLargestConnectedComponent(applied_labels=[1, 2, 3, 4], independent=False)
    return np.asarray(keep(torch.as_tensor(zones)[None]))[0].astype(zones.dtype)


def _centre(shape: tuple[int, ...], roi: tuple[int, ...]) -> tuple[slice, ...]:
    """The central ``roi`` window of ``shape`` (the whole axis where it is shorter)."""
    return tuple(slice(max(0, (s - r) // 2), max(0, (s - r) // 2) + min(s, r))
                 for s, r in zip(shape, roi, strict=True))


def _inside(gland: torch.Tensor, window: tuple[slice, ...], shape: tuple[int, ...]) -> bool:
    """Whether a gland found in ``window`` is whole: not empty and off every window face that
    lies inside the scan (a face on the scan's own edge cannot cut the gland)."""
    if not gland.any():
        return False
    for axis, (cut, size) in enumerate(zip(window, shape, strict=True)):
        if cut.start > 0 and gland.select(axis, 0).any():
            return False
        if cut.stop < size and gland.select(axis, -1).any():
            return False
    return True


@torch.no_grad()
def predict_zones(model: nn.Module, cfg: PiradsConfig, t2: Path | Volume, *,
                  channel: int | None = None, progress: bool = False) -> np.ndarray:
    """Zone labels (0-4) of ``t2`` on its own voxel grid.

    ``t2`` is a T2 volume already read by :func:`medcl.io.nifti.read_volume` (not read again),
    or its file (read here, ``channel`` picking the channel of a 4-D file).

    The network first sees the central training-crop window of the resampled scan, where the
    gland of a prostate scan usually is; if the gland found there is whole (it touches no
    window face inside the scan), that is the answer. Otherwise the whole scan is segmented
    with a sliding window of the crop size, so a gland anywhere in any field of view is seen.
    The largest connected gland is kept (:func:`keep_gland`). ``progress`` shows MONAI's
    sliding-window progress bar (tqdm, on stderr)."""
    from monai.inferers import sliding_window_inference

    from medcl.io.nifti import read_volume

    from .transforms import invert_to_input, preprocess, preprocess_transforms

    vol = t2 if isinstance(t2, Volume) else read_volume(t2, channel=channel)
    tf = preprocess_transforms(spacing=cfg.spacing, crop=None, with_label=False)
    with warnings.catch_warnings():  # a constant image: segment_file warns about it itself
        warnings.filterwarnings("ignore", message="Divide by zero")
        data = preprocess(vol, None, transforms=tf)
    x = torch.as_tensor(data["image"]).float()[None]
    model.eval()

    def segment(v: torch.Tensor, show: bool) -> torch.Tensor:
        logits = sliding_window_inference(v, roi_size=tuple(cfg.crop), sw_batch_size=1,
                                          predictor=lambda w: model(w)["fused"], overlap=0.25,
                                          progress=show)
        return torch.softmax(torch.as_tensor(logits), dim=1)[0]

    shape = tuple(x.shape[2:])
    window = _centre(shape, tuple(cfg.crop))
    centre = segment(x[(slice(None), slice(None), *window)], False)
    if _inside(centre.argmax(0) > 0, window, shape):
        probs = torch.zeros((centre.shape[0], *shape))
        probs[0] = 1.0  # background outside the window
        probs[(slice(None), *window)] = centre
    else:
        probs = segment(x, progress)
    return keep_gland(invert_to_input(probs, data).astype(np.uint8))


def check_outputs(t2: Path, out: Path, sectors: Path | None = None,
                  report: Path | None = None) -> None:
    """Refuse, before any work, outputs that cannot all be written: a wrong suffix (NIfTI for
    ``out``/``sectors``, or ``.dcm`` for a DICOM SEG when ``t2`` is a DICOM series folder;
    ``.json`` for ``report``), two outputs on one file, an output on the
    input, or a folder that cannot be created or written."""
    from medcl.io import ConfigError, refuse_overwrite

    seen: dict[str, str] = {}
    # a DICOM series in (a folder) may give a DICOM SEG out (*.dcm, medcl.io.dicom.write_seg)
    maps = (*NIFTI_SUFFIXES, ".dcm") if Path(t2).is_dir() else NIFTI_SUFFIXES
    targets = [(Path(p), flag, suffixes) for p, flag, suffixes in (
        (out, "--out", maps), (sectors, "--sectors", maps),
        (report, "--report", (".json",)))
        if p is not None]
    for path, flag, suffixes in targets:
        if not path.name.lower().endswith(suffixes):
            raise ConfigError(f"{flag} must end in {' or '.join(suffixes)}", path=path,
                              fix=f"name it e.g. {path.name.split('.')[0]}{suffixes[0]}")
        refuse_overwrite(path, [t2])
        key = os.path.abspath(path)
        if key in seen:
            raise ConfigError(f"{flag} and {seen[key]} name the same file", path=path,
                              fix="give each output its own path")
        seen[key] = flag
        if path.is_dir():
            raise ConfigError(f"{flag} is a folder", path=path, fix="give a file name")
    for path, flag, _ in targets:  # only now touch the disk: create the folder, probe it
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path.parent):
                pass
        except OSError as exc:
            raise ConfigError(f"{flag} cannot be written in {path.parent} ({exc.strerror or exc})",
                              path=path, fix="choose a writable location") from exc


def segment_file(model: nn.Module, cfg: PiradsConfig, t2: Path, out: Path, *,
                 sectors: Path | None = None, report: Path | None = None,
                 channel: int | None = None, progress: bool = False,
                 warn: Callable[[str], None] | None = None, series: str | None = None) -> dict:
    """Write ``out`` (zones, input geometry), optionally ``sectors`` and a JSON ``report``.

    ``t2`` is read once (:func:`medcl.io.nifti.read_volume`); the zone and sector maps are
    written by :func:`medcl.io.nifti.write_volume` with its geometry (shape, affine, qform and
    sform with their codes, header; ``uint8``, no intensity scaling). Every output path is
    checked before inference (:func:`check_outputs`) and all outputs are written to temporaries
    first and renamed together, so a failure leaves none of them.
    ``channel`` picks the channel of a 4-D file; ``progress`` shows the sliding-window progress
    bar; ``warn`` receives warnings (a non-axial scan, a constant image) as they arise
    (default :func:`warnings.warn`); they are also listed in the report."""
    from medcl.io import atomic_path, write_text
    from medcl.io.nifti import Canonical, axial_check, read_volume, write_volume

    from .sectors import sector_map, zone_volumes

    check_outputs(t2, out, sectors, report)
    vol = read_volume(t2, channel=channel, series=series)  # series: one of a DICOM folder's
    found = [axial_check(vol)]
    lo, hi = float(vol.data.min()), float(vol.data.max())
    if lo == hi:
        found.append(f"image {t2} is constant (every voxel {lo:g}); the zones found in it are "
                     "meaningless")
    found = [w for w in found if w]
    for w in found:
        (warn or (lambda m: warnings.warn(m, stacklevel=3)))(w)
    zones = predict_zones(model, cfg, vol, progress=progress)
    can = Canonical.of(vol)
    canon, back, ras_spacing = can.forward(zones), can.backward, list(can.zooms)
    volumes = zone_volumes(canon, ras_spacing)
    info: dict = {"input": str(t2), "zones": str(out), "volumes_ml": volumes,
                  "labels": {str(code): name for code, name in ZONES.items()},
                  "warnings": found}
    with ExitStack() as stack:  # temporaries renamed into place only when all are written
        write_volume(stack.enter_context(atomic_path(out)), zones, vol, dtype=np.uint8)
        if sectors is not None:
            smap, table = sector_map(canon, ras_spacing)
            write_volume(stack.enter_context(atomic_path(sectors)), back(smap), vol,
                         dtype=np.uint8)
            info["sectors"] = str(sectors)
            info["sector_scheme"] = table.attrs["scheme"]  # "v2 36-sector": no v2.1 structures
            info["sector_table"] = table[table.voxels > 0].to_dict(orient="records")
        if report is not None:
            write_text(stack.enter_context(atomic_path(report)),
                       json.dumps(info, indent=2, default=float) + "\n")
    return info

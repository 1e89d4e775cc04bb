"""The npz format and box protocol of the CVPR 2024 challenge "Segment Anything in Medical
Images on Laptop" (MedSAM-on-Laptop; LiteMedSAM is its baseline, MedSAM repository branch
``LiteMedSAM``, ``CVPR24_LiteMedSAM_infer.py`` and ``compute_metrics.py``).

A case is one ``.npz`` file:

``imgs``
    2-D: ``(H, W, 3)`` (or ``(H, W)`` grey) uint8 image; 3-D: ``(D, H, W)`` uint8 volume,
    already windowed to 0..255 by the challenge's preprocessing (CT as MedSAM).
``boxes``
    2-D: ``(N, 4)`` boxes ``x0, y0, x1, y1``; 3-D: ``(N, 6)`` boxes
    ``x0, y0, z0, x1, y1, z1`` (pixel and slice indices, inclusive). Box ``i`` (from 0) is
    the structure written as label ``i + 1``.
``gts`` (evaluation only)
    Label map of the image's shape, structure ``i + 1`` from box ``i``.
``spacing`` (optional)
    Voxel size in mm along the array's axes ``(D, H, W)`` (3-D); 1 when missing.

Output: an npz of the same name holding ``segs``, the label map of the image's shape (uint8 up
to 255 boxes, else uint16).

Protocol (as the baseline's inference script): 2-D, each box prompts the image once. 3-D, each
box prompts its middle slice ``z0 + (z1 - z0) // 2`` with its x-y rectangle; then the walk goes
up to ``z1`` and down to ``z0``, each slice prompted with the box of the previous slice's mask
grown by 3 px of the 256² frame (:func:`medcl.dbsam.prompts.px_at_256`), or with the middle
box again where the previous mask is empty (the authors' ``get_bbox256`` with
``bbox_shift=3``). Later boxes overwrite earlier ones where they overlap. Departure: the walk
includes ``z1`` (the authors' ``range(z_middle, z_max)`` stops one slice short of the box they
were given, whose ``z_max`` is the structure's last slice).
"""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import numpy as np

from medcl.io import InputFileError

__all__ = ["NPZ_SUFFIX", "is_npz", "npz_case", "read_npz", "score_npz", "segment_npz",
           "segment_npz_file", "write_segs"]

NPZ_SUFFIX = ".npz"
GROW_PX = 3
"""Growth of the propagated box, in pixels of the 256² frame (the baseline's ``bbox_shift``)."""

_FIX = ("give a MedSAM-on-Laptop npz: imgs (H, W, 3) with boxes (N, 4), or imgs (D, H, W) with "
        "boxes (N, 6)")


def is_npz(path: Path) -> bool:
    """Whether ``path`` names a challenge ``.npz`` case."""
    return Path(path).name.lower().endswith(NPZ_SUFFIX)


def _check_boxes(boxes: np.ndarray, shape: tuple[int, ...], three_d: bool,
                 path: Path) -> np.ndarray:
    width = 6 if three_d else 4
    b = np.asarray(boxes)
    if b.ndim == 1 and b.size == width:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != width or b.shape[0] < 1:
        raise InputFileError(
            f"boxes has shape {tuple(np.shape(boxes))}; a {'3' if three_d else '2'}-D image "
            f"needs (N, {width})", path=path, fix=_FIX)
    if not np.issubdtype(b.dtype, np.number) or not np.isfinite(b).all():
        raise InputFileError("boxes holds values that are not finite numbers", path=path,
                             fix=_FIX)
    b = np.rint(b).astype(np.int64)
    if three_d:
        d, h, w = shape
        lo, hi, size = b[:, :3], b[:, 3:], np.array([w, h, d])
        names = "x, y, z"
    else:
        h, w = shape[:2]
        lo, hi, size = b[:, :2], b[:, 2:], np.array([w, h])
        names = "x, y"
    bad = np.where((lo < 0).any(1) | (hi >= size).any(1) | (hi < lo).any(1))[0]
    if bad.size:
        i = int(bad[0])
        raise InputFileError(
            f"box {i} {b[i].tolist()} is outside the image ({names} sizes {size.tolist()}) or "
            "has a maximum below its minimum", path=path,
            fix="give boxes inside the image, minima first, inclusive maxima")
    return b


def read_npz(path: Path, *, need_gts: bool = False) -> dict:
    """Read and check a challenge case.

    Returns
    -------
    dict
        ``imgs`` (as stored), ``boxes`` (int64 ``(N, 4)`` or ``(N, 6)``), ``three_d``,
        ``spacing`` (``(D, H, W)`` mm, ones for 2-D or when missing), ``gts`` (or ``None``).

    Raises
    ------
    medcl.io.InputFileError
        Not a readable npz (truncated, not a zip, object arrays: pickles are refused), no
        ``imgs`` or ``boxes`` (or no ``gts`` with ``need_gts``), an image that is neither
        ``(H, W)``, ``(H, W, 3)`` nor ``(D, H, W)`` (e.g. 4 channels), boxes outside the image.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError("file not found", path=path, fix="check the path")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        raise InputFileError(f"cannot be read as an npz archive ({reason})", path=path,
                             fix="re-export the case with numpy.savez_compressed (object "
                             "arrays are refused)") from err
    if "imgs" not in data:
        raise InputFileError(f"has no 'imgs' array (it holds {sorted(data) or 'nothing'})",
                             path=path, fix=_FIX)
    imgs = data["imgs"]
    if not np.issubdtype(imgs.dtype, np.number) or imgs.size == 0:
        raise InputFileError(f"imgs has dtype {imgs.dtype} and size {imgs.size}", path=path,
                             fix="store imgs as a non-empty uint8 array")
    if imgs.ndim == 3 and imgs.shape[2] in (1, 2, 4):
        raise InputFileError(
            f"imgs has shape {imgs.shape}: {imgs.shape[2]} channels; a 2-D image has 3 "
            "(RGB) or none (grey)", path=path, fix="convert the image to RGB or grey")
    if imgs.ndim not in (2, 3):
        raise InputFileError(f"imgs has {imgs.ndim} dimensions", path=path, fix=_FIX)
    three_d = imgs.ndim == 3 and imgs.shape[2] != 3
    if "boxes" not in data:
        raise InputFileError("has no 'boxes' array: the challenge's prompts", path=path,
                             fix=_FIX)
    boxes = _check_boxes(data["boxes"], imgs.shape, three_d, path)
    spatial = imgs.shape if three_d else imgs.shape[:2]
    gts = data.get("gts")
    if need_gts and gts is None:
        raise InputFileError("has no 'gts' array to score against", path=path,
                             fix="evaluate on cases that hold their ground truth as gts")
    if gts is not None and tuple(gts.shape) != tuple(spatial):
        raise InputFileError(f"gts has shape {gts.shape}, imgs {imgs.shape}", path=path,
                             fix="store gts with the image's spatial shape")
    spacing = np.ones(3)
    if three_d and "spacing" in data:
        sp = np.asarray(data["spacing"], dtype=np.float64).reshape(-1)
        if sp.size != 3 or not np.isfinite(sp).all() or (sp <= 0).any():
            raise InputFileError(f"spacing {sp.tolist()} is not three positive sizes",
                                 path=path, fix="store spacing as (D, H, W) in mm")
        spacing = sp
    return {"imgs": imgs, "boxes": boxes, "three_d": three_d, "spacing": spacing, "gts": gts}


def npz_case(path: Path, *, with_labels: bool = False):
    """A challenge case as :class:`medcl.dbsam.data.CaseData` (slices in [0, 1]: ``imgs`` /
    255, or min-max scaled when not uint8) and its checked contents (:func:`read_npz`)."""
    from .data import CaseData

    data = read_npz(path, need_gts=with_labels)
    imgs = data["imgs"].astype(np.float32)
    if data["imgs"].dtype == np.uint8:
        imgs = imgs / 255.0
    else:
        lo, hi = float(imgs.min()), float(imgs.max())
        imgs = (imgs - lo) / max(hi - lo, 1e-8)
    if data["three_d"]:
        slices = [np.ascontiguousarray(s) for s in imgs]
        labels = None if data["gts"] is None else [s.astype(np.int64) for s in data["gts"]]
        sp = data["spacing"]
        spacing = (float(sp[1]), float(sp[2]), float(sp[0]))
    else:
        slices = [imgs]
        labels = None if data["gts"] is None else [data["gts"].astype(np.int64)]
        spacing = (1.0, 1.0, 1.0)
    case = CaseData(Path(path), slices, labels if with_labels else None, None, None, spacing)
    return case, data


def _segment_box3d(seg, box6: np.ndarray) -> dict[int, np.ndarray]:
    """The challenge's 3-D walk for one box (see the module docstring): ``{z: mask}``."""
    from .prompts import expand_box, mask_box, px_at_256

    x0, y0, z0, x1, y1, z1 = (int(v) for v in box6)
    h, w = seg.case.slices[0].shape[:2]
    grow = px_at_256(GROW_PX, (h, w))
    mid_box = np.array([x0, y0, x1, y1])
    z_mid = z0 + (z1 - z0) // 2
    masks = {z_mid: seg.predict(z_mid, mid_box)}
    for step, stop in ((1, z1), (-1, z0)):
        z = z_mid + step
        while (z <= stop) if step > 0 else (z >= stop):
            prev = masks[z - step]
            box = expand_box(mask_box(prev), grow, (h, w)) if prev.any() else mid_box
            masks[z] = seg.predict(z, box)
            z += step
    return masks


def segment_npz(model, case, data: dict) -> tuple[np.ndarray, list[float], object]:
    """Segment every box of a challenge case.

    Returns
    -------
    segs : numpy.ndarray
        Label map of the image's spatial shape (box ``i`` -> label ``i + 1``).
    seconds : list of float
        Running time of each box (image encoding included, cached between boxes).
    segmenter : SliceSegmenter
        With its embedding-cache counters.
    """
    from .infer import SliceSegmenter

    seg = SliceSegmenter(model, case)
    n = len(data["boxes"])
    h, w = case.slices[0].shape[:2]
    segs = np.zeros((len(case.slices), h, w), np.uint8 if n < 256 else np.uint16)
    seconds = []
    for i, box in enumerate(data["boxes"]):
        t0 = time.perf_counter()
        if data["three_d"]:
            for z, m in _segment_box3d(seg, box).items():
                segs[z][m] = i + 1
        else:
            segs[0][seg.predict(0, box)] = i + 1
        seconds.append(time.perf_counter() - t0)
    return (segs if data["three_d"] else segs[0]), seconds, seg


def write_segs(out: Path, segs: np.ndarray) -> Path:
    """Write ``segs`` as a compressed npz, atomically (temporary file and rename)."""
    from medcl.io.atomic import write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, segs=segs)
    return write_bytes(out, buf.getvalue())


def segment_npz_file(model, image: Path, out: Path, *, figure: Path | None = None) -> dict:
    """``medcl dbsam segment --image CASE.npz --out SEGS.npz``: the file's boxes as prompts;
    ``figure``: also a PNG of the slice with the most labelled pixels.

    Raises
    ------
    medcl.io.InputFileError
        A bad case (see :func:`read_npz`), an output that is not ``.npz`` or is the input.
    """
    from medcl.io import refuse_overwrite

    if not is_npz(out):
        raise InputFileError("the output of an npz case is an npz (segs)", path=out,
                             fix="name the output *.npz")
    refuse_overwrite(out, [image])
    case, data = npz_case(image)
    segs, seconds, seg = segment_npz(model, case, data)
    write_segs(out, segs)
    stack = segs[None] if segs.ndim == 2 else segs
    if figure is not None:
        from .evaluate import segment_figure_file

        z = int((stack > 0).sum(axis=(1, 2)).argmax())
        boxes = [b[[0, 1, 3, 4]] if data["three_d"] else b for b in data["boxes"]
                 if not data["three_d"] or b[2] <= z <= b[5]]
        segment_figure_file(figure, case.slices[z], stack[z], boxes,
                            f"{Path(image).name} slice {z}")
    return {"out": str(out), "voxels": int((segs > 0).sum()),
            "slices": int((stack > 0).any(axis=(1, 2)).sum()),
            "embeddings": seg.misses, "cache_hits": seg.hits, "boxes": len(seconds),
            "seconds": round(sum(seconds), 3)}


def score_npz(model, image: Path, label: Path, tolerance_mm: float = 2.0) -> list[dict]:
    """Rows of ``cases.csv`` for a challenge case: its boxes segmented as the challenge does
    (:func:`segment_npz`), each label of ``gts`` (and each box's label) scored in 3-D.

    ``dice`` is the challenge's DSC; ``nsd_2mm`` its NSD (surface Dice at ``tolerance_mm``
    with area-weighted surface elements and the file's spacing,
    :func:`medcl.dbsam.evaluate.nsd_challenge`); ``nsd_paper`` DB-SAM's 256²-grid NSD;
    ``seconds`` the running time of the label's box (0 for a label without a box).
    """
    from .evaluate import dice_score, nsd_challenge, nsd_paper

    case, data = npz_case(image)
    _, truth_data = npz_case(label, with_labels=True)
    gts = np.asarray(truth_data["gts"])
    if gts.shape[-2:] != case.slices[0].shape[:2]:
        raise InputFileError("its gts does not have the image's shape", path=label,
                             fix="pair each case with its own ground truth")
    segs, seconds, _ = segment_npz(model, case, data)
    three = (lambda a: a) if data["three_d"] else (lambda a: a[None])
    segs3, gts3 = three(segs), three(gts)
    sp = data["spacing"]
    codes = sorted({int(c) for c in np.unique(gts3) if c != 0} | set(range(1, len(seconds) + 1)))
    rows = []
    for code in codes:
        pred, truth = segs3 == code, gts3 == code
        rows.append({"label": code, "dice": dice_score(pred, truth),
                     "nsd_paper": nsd_paper(pred, truth),
                     "nsd_2mm": nsd_challenge(pred, truth, sp, tolerance_mm),
                     "pred_voxels": int(pred.sum()), "truth_voxels": int(truth.sum()),
                     "slices": int(truth.any(axis=(1, 2)).sum()),
                     "seconds": round(seconds[code - 1], 3) if code <= len(seconds) else 0.0})
    return rows

"""From files to model-ready slices and back: NIfTI volumes and 2-D PNG/JPG images.

Volumes are read once and checked (:mod:`medcl.io.nifti`), reoriented to RAS+ without resampling
(:class:`medcl.io.nifti.Canonical`), intensity-normalised for the modality over the whole volume
(:func:`medcl.dbsam.preprocess.normalize_intensity`) and cut into axial slices. A slice is the
transposed plane ``data[:, :, z].T`` of shape ``(Y, X)``, so a box ``(x0, y0, x1, y1)`` in
pixel coordinates is directly a box in RAS voxel indices ``x``, ``y``. Masks predicted on the
slices are stacked, turned back into the file's voxel order and written with the input's
affine and header; 2-D images come back as PNG masks of the input's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from medcl.io import InputFileError
from medcl.io.cases import IMAGE_2D_SUFFIXES
from medcl.io.nifti import NIFTI_SUFFIXES, Canonical, Volume

from .config import DBSAMConfig

SUFFIXES = NIFTI_SUFFIXES + IMAGE_2D_SUFFIXES + (".npz",)
"""File endings of the images and labels DB-SAM reads: NIfTI volumes, 2-D PNG/JPG images and
the MedSAM-on-Laptop challenge's npz cases (:mod:`medcl.dbsam.npz`; labels from ``gts``)."""


def is_2d(path: Path) -> bool:
    """Whether ``path`` names a PNG/JPG image (else NIfTI)."""
    return Path(path).name.lower().endswith(IMAGE_2D_SUFFIXES)


@dataclass
class CaseData:
    """One image as slices, with what is needed to write a mask back.

    Attributes
    ----------
    path : the image file.
    slices : ``(H, W)`` or ``(H, W, 3)`` float32 arrays in [0, 1], one per axial slice.
    labels : ``(H, W)`` integer label slices, or ``None``.
    vol, can : the NIfTI volume and its RAS map (``None`` for 2-D images).
    spacing : pixel spacing (mm) of the slices' rows and columns and of the slice axis.
    """

    path: Path
    slices: list[np.ndarray]
    labels: list[np.ndarray] | None
    vol: Volume | None
    can: Canonical | None
    spacing: tuple[float, float, float]

    @property
    def ras_shape(self) -> tuple[int, int, int]:
        """``(X, Y, Z)`` in RAS order (``(W, H, 1)`` for a 2-D image)."""
        h, w = self.slices[0].shape[:2]
        return (w, h, len(self.slices))

    def label_volume(self) -> np.ndarray:
        """The labels stacked as a ``(Z, H, W)`` array."""
        if self.labels is None:
            raise ValueError(f"{self.path}: no labels loaded")
        return np.stack(self.labels)


def to_slices(ras: np.ndarray) -> list[np.ndarray]:
    """``(X, Y, Z)`` RAS array -> ``Z`` slices of shape ``(Y, X)``."""
    return [np.ascontiguousarray(ras[:, :, z].T) for z in range(ras.shape[2])]


def from_slices(slices: list[np.ndarray] | np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_slices`: ``Z`` slices ``(Y, X)`` -> ``(X, Y, Z)``."""
    return np.stack([np.asarray(s).T for s in slices], axis=2)


def read_2d(path: Path) -> np.ndarray:
    """A PNG/JPEG as ``(H, W)`` (grey) or ``(H, W, 3)`` (RGB) float32 in [0, 1]."""
    from medcl.io.images import read_image

    pixels, _ = read_image(path)
    return pixels[..., 0] if pixels.shape[2] == 1 else pixels


def load_case(image: Path, label: Path | None, cfg: DBSAMConfig, *,
              series: str | None = None) -> CaseData:
    """Read ``image`` (and ``label``, checked against the image's geometry) into slices.

    ``image`` may be a folder holding a DICOM series; ``series`` picks one SeriesInstanceUID
    when the folder holds several.

    Raises
    ------
    InputFileError
        Missing, corrupt or truncated files, non-3-D volumes (4-D needs ``cfg.channel``),
        NaN/inf voxels, label codes that are not integers in 0..255, image/label shape or affine
        mismatch.
    """
    from .npz import is_npz, npz_case
    from .preprocess import normalize_intensity

    image = Path(image)
    if is_npz(image):
        case, _ = npz_case(image)
        if label is not None:
            truth, _ = npz_case(Path(label), with_labels=True)
            if truth.slices[0].shape[:2] != case.slices[0].shape[:2] or len(truth.slices) != len(
                    case.slices):
                raise InputFileError("its gts does not have the image's shape", path=label,
                                     fix="pair each case with its own ground truth")
            case.labels = truth.labels
        return case
    if is_2d(image):
        img = read_2d(image)
        case = CaseData(image, [img], None, None, None, (1.0, 1.0, 1.0))
        if label is not None:
            case.labels = read_label_slices(label, case)
        return case

    from medcl.io.nifti import read_volume

    vol = read_volume(image, channel=cfg.channel, series=series)
    can = Canonical.of(vol)
    ct_preset = cfg.preset if cfg.modality == "ct" and cfg.window is None else None
    ras = normalize_intensity(can.forward(vol.data), cfg.modality,
                              window=None if cfg.window is None else tuple(cfg.window),
                              preset=ct_preset)
    zx, zy, zz = can.zooms
    case = CaseData(image, to_slices(ras.astype(np.float32)), None, vol, can, (zy, zx, zz))
    if label is not None:
        case.labels = read_label_slices(label, case)
    return case


def read_label_slices(path: Path, case: CaseData) -> list[np.ndarray]:
    """A label map (labels of training/evaluation, or ``segment --prompt-mask``) drawn on
    ``case``'s image, as int64 slices like ``case.slices``.

    Raises
    ------
    InputFileError
        Unreadable file, non-integer codes, codes outside 0..255 (0 is background; masks are
        written as uint8), or a shape/affine that differs from the image's.
    """
    if case.vol is None:
        from medcl.io.images import read_mask

        lab = read_mask(path)
        if lab.shape != case.slices[0].shape[:2]:
            raise InputFileError(
                f"label shape {lab.shape} differs from the image's "
                f"{case.slices[0].shape[:2]} ({case.path})", path=path,
                fix="pass the mask drawn on this image")
        slices = [lab]
    else:
        from medcl.io.nifti import read_labels

        assert case.can is not None
        slices = to_slices(case.can.forward(read_labels(path, like=case.vol).data)
                           .astype(np.int64))
    bad = sorted({int(c) for s in slices for c in np.unique(s) if not 0 <= c <= 255})
    if bad:
        raise InputFileError(
            f"has label code(s) {bad[:5]} outside 0..255", path=path,
            fix="store each structure as a code from 1 to 255 (0 is background)")
    return slices


def write_mask(case: CaseData, masks: list[np.ndarray], out: Path) -> Path:
    """Write per-slice label masks ``(H, W)`` in the input's geometry (NIfTI) or size (PNG)."""
    from medcl.io import atomic_path, refuse_overwrite

    out = Path(out)
    refuse_overwrite(out, [case.path])
    if case.vol is None:
        from PIL import Image

        if not out.name.lower().endswith(".png"):
            raise InputFileError("a 2-D image's mask is written as PNG", path=out,
                                 fix="name the output *.png")
        arr = np.asarray(masks[0]).astype(np.uint8)
        if arr.max() <= 1:
            arr = arr * 255  # a binary mask a viewer shows
        with atomic_path(out) as tmp:
            Image.fromarray(arr).save(tmp, format="PNG")
        return out
    from medcl.io.nifti import write_volume

    ras = from_slices([np.asarray(m) for m in masks])
    assert case.can is not None
    return write_volume(out, case.can.backward(ras), like=case.vol, dtype=np.uint8)


class SliceDataset(Dataset):
    """Training samples ``(image (3, S, S), box (4,), target (1, L, L))``, L the model's
    low-resolution mask side (S/4 for SAM, S for LiteMedSAM).

    One sample per (slice, label) where the label covers at least ``cfg.min_pixels`` pixels
    ("slices containing the target"). The box is the label's tight box with each side moved
    outward by 0 to ``cfg.jitter`` pixels of a 256² slice, scaled to the slice
    (:func:`medcl.dbsam.prompts.jitter_box`, :func:`~medcl.dbsam.prompts.px_at_256`; DB-SAM's
    released loader: 0-19 px); the jitter draws from torch's RNG so the engine's per-epoch
    reseeding makes runs and resumes exact.
    """

    def __init__(self, cases: list[CaseData], cfg: DBSAMConfig, *, jitter: int | None = None):
        self.cfg = cfg
        self.jitter = cfg.jitter if jitter is None else jitter
        self.items: list[tuple[np.ndarray, np.ndarray]] = []
        for case in cases:
            if case.labels is None:
                raise ValueError(f"{case.path}: training needs labels")
            for img, lab in zip(case.slices, case.labels, strict=True):
                codes = [int(c) for c in np.unique(lab) if c != 0]
                for code in codes:
                    if cfg.labels is not None and code not in cfg.labels:
                        continue
                    mask = lab == code
                    if int(mask.sum()) >= cfg.min_pixels:
                        self.items.append((img, mask))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from .preprocess import slice_to_input
        from .prompts import jitter_box, mask_box, px_at_256

        img, mask = self.items[i]
        x, geom = slice_to_input(img, self.cfg.image_size, self.cfg.style)
        box = mask_box(mask)
        max_px = px_at_256(self.jitter, mask.shape)
        if max_px > 0:
            rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, ()).item()))
            box = jitter_box(box, mask.shape, max_px, rng)
        target = torch.as_tensor(geom.mask_to_input(mask) > 0, dtype=torch.float32)[None]
        return x, torch.as_tensor(geom.box_to_input(box), dtype=torch.float32), target

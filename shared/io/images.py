"""2-D images (PNG/JPEG) and 2-D label masks, read and checked once.

:func:`read_image` gives pixels in [0, 1] whatever the file's bit depth; :func:`read_mask`
keeps the integer codes of a label image (indexed PNGs stay indices). Both raise
:class:`~medcl.io.errors.InputFileError` naming the file and the fix for a missing, corrupt or
unsupported file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputFileError

__all__ = ["min_max", "read_image", "read_mask", "to_unit_range"]


def min_max(array: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the array's own minimum and maximum (constant -> zeros; NaN/inf -> 0)."""
    out = np.nan_to_num(np.asarray(array).astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = float(out.min()), float(out.max())
    out = (out - lo) / (hi - lo) if hi > lo else np.zeros_like(out)
    return out.astype(np.float32)


def to_unit_range(array: np.ndarray) -> tuple[np.ndarray, bool]:
    """An image in [0, 1]: bool as is, 8/16-bit integers by their full range, anything else by
    :func:`min_max`; returns the image and whether min-max scaling was used."""
    if array.dtype == bool:
        return array.astype(np.float32), False
    if array.dtype in (np.uint8, np.uint16):
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max), False
    return min_max(array), True


def read_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, list[str]]:
    """Read a PNG/JPEG as ``(H, W, C)`` float32 in [0, 1] with C in {1, 3}.

    Returns
    -------
    pixels : numpy.ndarray
    flags : list of str
        ``"alpha"`` when an alpha channel was dropped, ``"minmax"`` when the values were
        min-max scaled (not 8- or 16-bit).
    """
    from skimage import io

    path = Path(path)
    if not path.exists():
        raise InputFileError("file not found", path=path, fix="check the path")
    try:
        array = np.asarray(io.imread(path))
    except Exception as exc:  # any decoder failure means an unreadable file
        raise InputFileError(
            f"cannot read the image ({type(exc).__name__}: {exc})",
            path=path,
            fix="replace or remove the damaged file (it must be a valid PNG or JPEG)",
        ) from exc
    flags: list[str] = []
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise InputFileError(
            f"unsupported image layout {tuple(array.shape)} (expected a single 2-D grayscale, "
            "RGB or RGBA frame)",
            path=path,
            fix="save the image as a single-frame grayscale or RGB PNG/JPEG",
        )
    if array.shape[2] in (2, 4):  # gray+alpha or RGBA: drop the alpha channel
        array = array[:, :, :-1]
        flags.append("alpha")
    pixels, scaled = to_unit_range(array)
    if scaled:
        flags.append("minmax")
    return pixels, flags


def read_mask(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a single-channel label image as ``(H, W)`` int64 codes.

    Indexed (palette) PNGs give their indices; a mask saved as 0/255 is read as a binary
    mask (0/1). Colour images are refused: a label image must hold codes, not colours.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.exists():
        raise InputFileError("file not found", path=path, fix="check the path")
    try:
        with Image.open(path) as im:
            im.load()
            arr = np.asarray(im)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputFileError(f"cannot be read as an image ({exc})", path=path,
                             fix="the file is corrupt or truncated; export it again") from exc
    if arr.ndim != 2:
        raise InputFileError(f"a label image must be single-channel, got shape {arr.shape}",
                             path=path, fix="save the mask as a greyscale or indexed PNG")
    if set(np.unique(arr).tolist()) <= {0, 255}:
        arr = arr > 0
    return arr.astype(np.int64)

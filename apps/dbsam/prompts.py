"""Box and mask prompts for DB-SAM: extraction, jitter, parsing, validation, 3-D propagation.

DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172) is prompted like MedSAM (Ma et al.,
Nature Communications 2024): with one bounding box per object and slice. During training the
box is the ground truth's bounding box with each side moved outward by 0-19 px (on 256² slices,
scaled to the slice size); for evaluation it is grown by 9 px on every side; at inference the user
gives a box (2-D), a 3-D box, a box on one key slice that is propagated slice by slice (as in
LiteMedSAM's 3-D inference), or a coarse 3-D mask.

Conventions
-----------
A 2-D box is ``xyxy = (x0, y0, x1, y1)`` in pixel indices of an ``(H, W)`` slice, ``x`` a column
and ``y`` a row, with *inclusive* maxima (``x1`` is the last column of the object).

Boxes given for a volume of shape ``(X, Y, Z)`` are in its voxel indices: ``x`` along axis 0,
``y`` along axis 1, ``z`` along axis 2 (the slice index). The data layer hands slices over as
``data[:, :, z].T``, of shape ``(Y, X)``: its rows are ``y`` and its columns are ``x``. A
volume box's ``(X0, Y0, X1, Y1)`` is therefore directly the ``xyxy`` box of that transposed
slice, with no swap.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

from medcl.io.errors import ConfigError

__all__ = [
    "box3d_to_slices",
    "expand_box",
    "jitter_box",
    "mask_box",
    "px_at_256",
    "PROMPT_GRID",
    "parse_box3d",
    "parse_labelled_box",
    "parse_box_slice",
    "propagate",
]

_INT = r"\s*(-?\d+)\s*"


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """Bounding box of a 2-D mask.

    Parameters
    ----------
    mask : numpy.ndarray, shape (H, W)
        Non-zero values are the object.

    Returns
    -------
    numpy.ndarray of int64, shape (4,), or None
        ``(x0, y0, x1, y1)`` with inclusive maxima; ``None`` for an empty mask.

    Examples
    --------
    >>> m = np.zeros((5, 6), bool); m[1:3, 2:5] = True
    >>> mask_box(m).tolist()
    [2, 1, 4, 2]
    """
    m = np.asarray(mask)
    if m.ndim != 2:
        raise ValueError(f"mask_box needs a 2-D mask, got shape {m.shape}")
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.int64)


def expand_box(box: np.ndarray, margin: int, shape: tuple[int, int]) -> np.ndarray:
    """Grow a box by ``margin`` pixels on every side, clipped to an ``(H, W)`` slice."""
    b = np.asarray(box, dtype=np.int64)
    H, W = shape
    lo = np.maximum(b[:2] - margin, 0)
    hi = np.minimum(b[2:] + margin, [W - 1, H - 1])
    return np.concatenate([lo, hi])


PROMPT_GRID = 256
"""Side of the square slices DB-SAM's protocol counts box pixels on (MedSAM's 256² npz data)."""


def px_at_256(px: float, shape: tuple[int, int]) -> int:
    """``px`` pixels of a 256² slice in pixels of an ``(H, W)`` slice, rounded.

    DB-SAM's training and test slices are 256 x 256 (MedSAM's preprocessed data, Ma et al.,
    Nature Communications 2024), and its box jitter and margin are counted there (Qin et al.,
    MICCAI 2024, arXiv:2410.04172, released ``npy_dataset.py`` / ``npz_dataset.py``). A slice
    of another size gets the same share of its longest side, e.g. 19 px -> 38 px at 512.
    """
    return int(round(float(px) * max(int(shape[0]), int(shape[1])) / PROMPT_GRID))


def jitter_box(
    box: np.ndarray | Sequence[int],
    shape: tuple[int, int],
    max_px: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Move each side of a box **outward** by a random 0..``max_px`` pixels (DB-SAM training).

    Each side moves independently by an integer drawn uniformly from ``0..max_px`` (inclusive),
    away from the box's centre, and the result is clipped to the slice. The box therefore
    always contains the object, as in the authors' released training data loader
    (``np.random.randint(0, 20)`` per side, i.e. 0-19 px on 256² slices; Qin et al., MICCAI
    2024, arXiv:2410.04172). Use :func:`px_at_256` to turn the 256² figure into slice pixels.

    Parameters
    ----------
    box : array_like, shape (4,)
        ``(x0, y0, x1, y1)``, inclusive, inside the slice.
    shape : tuple of int
        ``(H, W)`` of the slice.
    max_px : int
        Largest outward shift of a side in slice pixels, >= 0.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray of int64, shape (4,)
        A box that contains ``box``: ``0 <= x0 <= box[0]``, ``box[2] <= x1 <= W - 1`` and the
        same for ``y``.
    """
    if max_px < 0:
        raise ValueError(f"max_px must be >= 0, got {max_px}")
    b = np.rint(np.asarray(box, dtype=np.float64)).astype(np.int64)
    H, W = shape
    draw = rng.integers(0, max_px + 1, size=4)
    out = b + draw * np.array([-1, -1, 1, 1])
    out[[0, 2]] = np.clip(out[[0, 2]], 0, W - 1)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, H - 1)
    return out


def _bad_box(flag: str, text: str, form: str, example: str, why: str) -> ConfigError:
    return ConfigError(
        f"{flag} {text!r} {why}",
        fix=f"write {flag} as {form} (voxel indices, maxima inclusive), e.g. {flag} {example}",
    )


def parse_box3d(text: str, *, flag: str = "--box") -> tuple[int, int, int, int, int, int]:
    """Parse ``"X0,Y0,Z0,X1,Y1,Z1"`` (voxel indices, inclusive maxima).

    Raises
    ------
    ConfigError
        Naming ``flag``: not six integers, or an empty box (a maximum below its minimum).
    """
    form, example = "X0,Y0,Z0,X1,Y1,Z1", "40,52,10,88,97,21"
    m = re.fullmatch(",".join([_INT] * 6), str(text))
    if m is None:
        raise _bad_box(flag, text, form, example, "is not six comma-separated integers")
    x0, y0, z0, x1, y1, z1 = (int(g) for g in m.groups())
    for name, lo, hi in (("x", x0, x1), ("y", y0, y1), ("z", z0, z1)):
        if hi < lo:
            raise _bad_box(flag, text, form, example, f"is empty: {name}1 = {hi} < {name}0 = {lo}")
    return x0, y0, z0, x1, y1, z1


def parse_labelled_box(text: str, default_label: int, *,
                       flag: str = "--box") -> tuple[int, tuple[int, int, int, int, int, int]]:
    """Parse ``"[CODE=]X0,Y0,Z0,X1,Y1,Z1"`` into ``(code, box)``; no prefix gives
    ``default_label``. Several such boxes make a label map (one structure per code).

    Raises
    ------
    ConfigError
        Naming ``flag``: a code that is not an integer in 1..255, or a bad box
        (:func:`parse_box3d`).
    """
    code_text, sep, rest = str(text).partition("=")
    if not sep:
        return int(default_label), parse_box3d(text, flag=flag)
    if not re.fullmatch(r"\s*\d+\s*", code_text) or not 1 <= int(code_text) <= 255:
        raise ConfigError(f"{flag} {text!r}: the label code before '=' must be an integer "
                          "from 1 to 255", fix=f"write e.g. {flag} 2=40,52,10,88,97,21")
    return int(code_text), parse_box3d(rest, flag=flag)


def check_code(code: int, flag: str = "--label") -> int:
    """A label code written into a mask: an integer from 1 to 255 (0 is background; masks are
    uint8), else a :class:`ConfigError` naming ``flag``."""
    if not 1 <= int(code) <= 255:
        raise ConfigError(f"{flag} {code} is not a label code from 1 to 255",
                          fix=f"pass {flag} N with 1 <= N <= 255 (0 is background)")
    return int(code)


def parse_box_slice(
    text: str, *, flag: str = "--box-slice"
) -> tuple[int, tuple[int, int, int, int]]:
    """Parse ``"Z:X0,Y0,X1,Y1"``: a 2-D box on slice ``Z`` (voxel indices, inclusive maxima).

    Returns
    -------
    z : int
    box : tuple of int
        ``(x0, y0, x1, y1)``.

    Raises
    ------
    ConfigError
        Naming ``flag``: malformed text, a negative slice index, or an empty box.
    """
    form, example = "Z:X0,Y0,X1,Y1", "15:40,52,88,97"
    m = re.fullmatch(_INT + ":" + ",".join([_INT] * 4), str(text))
    if m is None:
        raise _bad_box(flag, text, form, example, "is not Z:X0,Y0,X1,Y1 with integers")
    z, x0, y0, x1, y1 = (int(g) for g in m.groups())
    if z < 0:
        raise _bad_box(flag, text, form, example, f"has a negative slice index {z}")
    for name, lo, hi in (("x", x0, x1), ("y", y0, y1)):
        if hi < lo:
            raise _bad_box(flag, text, form, example, f"is empty: {name}1 = {hi} < {name}0 = {lo}")
    return z, (x0, y0, x1, y1)


def box3d_to_slices(
    box6: Sequence[int], shape: tuple[int, int, int], *, flag: str = "--box"
) -> dict[int, np.ndarray]:
    """Split a 3-D box into the 2-D box of each slice it spans.

    Parameters
    ----------
    box6 : sequence of 6 int
        ``(X0, Y0, Z0, X1, Y1, Z1)`` in voxel indices of a volume of shape ``(X, Y, Z)``,
        inclusive (see the module docstring for the axes).
    shape : tuple of int
        ``(X, Y, Z)``.
    flag : str, default "--box"
        Named in errors.

    Returns
    -------
    dict of int to numpy.ndarray
        ``{z: (X0, Y0, X1, Y1)}`` for ``z = Z0 .. Z1``: the ``xyxy`` box of the transposed
        slice ``data[:, :, z].T``.

    Raises
    ------
    ConfigError
        The box is empty, has a negative corner or reaches beyond the volume.
    """
    x0, y0, z0, x1, y1, z1 = (int(v) for v in box6)
    X, Y, Z = (int(s) for s in shape)
    shown = f"{x0},{y0},{z0},{x1},{y1},{z1}"
    if x1 < x0 or y1 < y0 or z1 < z0:
        raise ConfigError(
            f"{flag} {shown} is empty (a maximum is below its minimum)",
            fix="write it as X0,Y0,Z0,X1,Y1,Z1 with each minimum <= its maximum",
        )
    if min(x0, y0, z0) < 0 or x1 >= X or y1 >= Y or z1 >= Z:
        raise ConfigError(
            f"{flag} {shown} lies outside the volume of shape {X} x {Y} x {Z} (X, Y, Z)",
            fix=f"give voxel indices with 0 <= x <= {X - 1}, 0 <= y <= {Y - 1}, "
            f"0 <= z <= {Z - 1} (e.g. read them in a viewer that shows voxel indices)",
        )
    box2 = np.array([x0, y0, x1, y1], dtype=np.int64)
    return {z: box2.copy() for z in range(z0, z1 + 1)}


def propagate(
    predict: Callable[[int, np.ndarray], np.ndarray],
    key_z: int,
    key_box: np.ndarray,
    n_slices: int,
    *,
    margin: int = 0,
    min_pixels: int = 1,
    shape: tuple[int, int] | None = None,
) -> dict[int, np.ndarray]:
    """Segment a 3-D object from one box on a key slice, slice by slice (LiteMedSAM style).

    The key slice is segmented with ``key_box``; then the walk goes up (``key_z + 1``, ...)
    and down (``key_z - 1``, ...), each slice prompted with the bounding box of the previous
    slice's prediction grown by ``margin`` pixels (and clipped). A direction stops at the end
    of the volume or at the first slice whose prediction has fewer than ``min_pixels``
    pixels: the object has ended there.

    Parameters
    ----------
    predict : callable
        ``predict(z, box) -> mask``: the model's bool mask ``(H, W)`` for slice ``z`` given an
        ``xyxy`` box (int64 array of 4).
    key_z : int
        Index of the key slice, ``0 <= key_z < n_slices``.
    key_box : array_like, shape (4,)
        Box on the key slice.
    n_slices : int
        Number of slices of the volume.
    margin : int, default 0
        Pixels added to each side of the propagated box, so that an object growing from one
        slice to the next is not cut by the box.
    min_pixels : int, default 1
        Smallest prediction that counts as "the object is still there".
    shape : tuple of int, optional
        ``(H, W)`` of a slice, for clipping; default the key prediction's shape.

    Returns
    -------
    dict of int to numpy.ndarray of bool
        ``{z: mask}`` for the slices where the object was found, in increasing ``z``. The
        slices where a direction stopped (empty or too small predictions) are *not* included;
        an empty dict means that even the key slice gave nothing.
    """
    if not 0 <= key_z < n_slices:
        raise ValueError(f"key slice {key_z} is outside 0..{n_slices - 1}")
    found: dict[int, np.ndarray] = {}
    key_mask = np.asarray(predict(key_z, np.asarray(key_box, dtype=np.int64)), dtype=bool)
    if key_mask.sum() < min_pixels:
        return found
    found[key_z] = key_mask
    hw = tuple(shape) if shape is not None else key_mask.shape
    for step in (1, -1):
        prev = key_mask
        z = key_z + step
        while 0 <= z < n_slices:
            box = expand_box(mask_box(prev), margin, hw)  # prev is non-empty: box exists
            mask = np.asarray(predict(z, box), dtype=bool)
            if mask.sum() < min_pixels:
                break
            found[z] = mask
            prev = mask
            z += step
    return dict(sorted(found.items()))

"""NIfTI volumes: reading, checking and writing 3-D images and label maps with nibabel.

Every reader validates its file once, at the edge, and raises :class:`~.errors.InputFileError`
naming the file and the fix (missing file, wrong suffix, corrupt content, wrong number of
dimensions, non-finite values, unknown label codes, geometry that differs from the image).
Every writer keeps the geometry (shape, affine, header) of the volume it derives from and goes
through :func:`medcl.io.atomic.atomic_path`, so a crash never leaves half a file behind.

This module imports nibabel at import time; ``import medcl.io`` does not import it.

Examples
--------
>>> vol = read_volume("case_000.nii.gz")  # doctest: +SKIP
>>> labels = read_labels("case_000_seg.nii.gz", allowed={0, 1, 2}, like=vol)  # doctest: +SKIP
>>> write_volume("pred.nii.gz", labels.data, like=vol, dtype="uint8")  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .atomic import atomic_path, refuse_overwrite
from .errors import ConfigError, InputFileError

__all__ = [
    "NIFTI_SUFFIXES",
    "Canonical",
    "Volume",
    "axial_check",
    "read_labels",
    "read_volume",
    "strip_suffix",
    "write_volume",
]

NIFTI_SUFFIXES: tuple[str, ...] = (".nii.gz", ".nii")
"""File name endings recognised as NIfTI, lower case (compared case-insensitively).

The one list of the project (:mod:`medcl.io.cases` and the apps use it). The first entry is the
preferred ending (named in messages, looked up first); :func:`strip_suffix` matches the longest
ending first whatever the order of a list it is given, so ``.nii.gz`` is never cut as ``.nii``.
"""

_GEOMETRY_ATOL = 1e-3
_MAX_SLICE_TILT_DEG = 30.0
_ANISOTROPY = 1.2  # thickest / thinnest spacing above which the slice axis is "the thick one"


@dataclass
class Volume:
    """A 3-D volume as stored on disk, with its geometry.

    Attributes
    ----------
    data : numpy.ndarray
        The voxel values, shape ``(X, Y, Z)`` in the file's voxel order (no reorientation).
    affine : numpy.ndarray
        ``(4, 4)`` voxel-to-world (RAS+ mm) matrix.
    header : nibabel.Nifti1Header
        A copy of the file's header (data shape set to ``data.shape``).
    path : pathlib.Path or None
        The file read, or ``None`` for a volume built in memory.
    notes : list of str
        Remarks gathered while reading (e.g. which channel was taken).
    source : object, optional
        For a volume read from a DICOM folder, its :class:`medcl.io.dicom.SeriesInfo` (what a
        DICOM SEG output references); ``None`` for NIfTI.
    """

    data: np.ndarray
    affine: np.ndarray
    header: nib.Nifti1Header
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    source: Any = None

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along the three voxel axes, from the header zooms."""
        zooms = self.header.get_zooms()
        return (float(zooms[0]), float(zooms[1]), float(zooms[2]))

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of :attr:`data`."""
        return tuple(int(s) for s in self.data.shape)  # type: ignore[return-value]

    @classmethod
    def from_array(cls, data: ArrayLike, affine: ArrayLike) -> Volume:
        """Build an in-memory volume (no file) whose header matches ``data`` and ``affine``.

        Parameters
        ----------
        data : array_like, shape (X, Y, Z)
            Voxel values.
        affine : array_like, shape (4, 4)
            Voxel-to-world matrix; the header zooms are its column norms.

        Returns
        -------
        Volume
            With ``path=None``; usable as ``like`` in :func:`write_volume`.
        """
        arr = np.asarray(data)
        aff = np.asarray(affine, dtype=np.float64)
        if arr.ndim != 3:
            raise ValueError(f"Volume.from_array needs a 3-D array, got shape {arr.shape}")
        if aff.shape != (4, 4):
            raise ValueError(f"Volume.from_array needs a (4, 4) affine, got shape {aff.shape}")
        img = nib.Nifti1Image(arr, aff)
        header = img.header.copy()
        header.set_xyzt_units("mm", "sec")
        return cls(data=arr, affine=aff.copy(), header=header, path=None)


def strip_suffix(name: str, suffixes: Sequence[str] = NIFTI_SUFFIXES) -> str | None:
    """``name`` without the longest of ``suffixes`` it ends with (case-insensitively).

    Parameters
    ----------
    name : str
        A file name (no folder), e.g. ``"case_001.nii.gz"``.
    suffixes : sequence of str, default :data:`NIFTI_SUFFIXES`
        Lower-case endings; their order does not matter (the longest match wins).

    Returns
    -------
    str or None
        The name without its ending (``"case_001"``), or ``None`` when none matches.
    """
    low = name.lower()
    for suffix in sorted(suffixes, key=len, reverse=True):
        if low.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _is_nifti_name(path: Path) -> bool:
    return strip_suffix(path.name) is not None


def load_nifti(path: str | os.PathLike[str]) -> tuple[Path, Any, np.ndarray]:
    """Open a NIfTI file and return ``(path, image, data as stored)``.

    The one place that turns a missing, misnamed or unreadable NIfTI file into an
    :class:`InputFileError` naming it; every NIfTI reader of the project opens files here.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(
            "file not found", path=p, fix="check the path (is it relative to another folder?)"
        )
    if p.is_dir():
        raise InputFileError(
            "is a folder, not a NIfTI file", path=p, fix="pass a .nii or .nii.gz file"
        )
    if not _is_nifti_name(p):
        raise InputFileError(
            f"not a NIfTI file (suffix {''.join(p.suffixes) or 'none'!r})",
            path=p,
            fix="convert it to NIfTI (.nii or .nii.gz), e.g. with dcm2niix for DICOM",
        )
    try:
        img = nib.load(p)
        if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
            raise TypeError(f"nibabel read it as {type(img).__name__}")
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types for broken files
        raise InputFileError(
            f"cannot be read as NIfTI ({type(exc).__name__}: {exc})",
            path=p,
            fix="the file is corrupt or truncated; export or download it again",
        ) from exc
    return p, img, np.asarray(data)


def _to_3d(p: Path, data: np.ndarray, channel: int | None, notes: list[str]) -> np.ndarray:
    # NIfTI vector images are stored as (X, Y, Z, 1, C): fold singleton axes after the third.
    if data.ndim > 4 and sum(s != 1 for s in data.shape[3:]) <= 1:
        data = data.reshape(data.shape[:3] + (int(np.prod(data.shape[3:])),))
    if data.ndim < 3:
        raise InputFileError(
            f"has {data.ndim} dimension(s) (shape {data.shape}); a 3-D volume is needed",
            path=p,
            fix="pass the whole 3-D scan, not a single slice",
        )
    if data.ndim == 3:
        if channel not in (None, 0):
            raise InputFileError(
                f"is 3-D (shape {data.shape}) but channel {channel} was asked for",
                path=p,
                fix="drop --channel, or pass --channel 0",
            )
        return data
    if data.ndim == 4:
        n = data.shape[3]
        if channel is None:
            if n == 1:
                notes.append("4-D file with one channel: took channel 0")
                return data[..., 0]
            raise InputFileError(
                f"is 4-D with {n} channels (shape {data.shape}) and no channel was chosen",
                path=p,
                fix=f"pass --channel N with 0 <= N < {n}",
            )
        if not 0 <= channel < n:
            raise InputFileError(
                f"channel {channel} is out of range: the file has {n} channels",
                path=p,
                fix=f"pass --channel N with 0 <= N < {n}",
            )
        notes.append(f"took channel {channel} of {n}")
        return data[..., channel]
    raise InputFileError(
        f"has {data.ndim} dimensions (shape {data.shape}); a 3-D or 4-D volume is needed",
        path=p,
        fix="split the file into 3-D volumes (e.g. with fslsplit)",
    )


def _header_for(img: Any, data: np.ndarray) -> nib.Nifti1Header:
    header = img.header
    if not isinstance(header, nib.Nifti1Header) or isinstance(header, nib.Nifti2Header):
        header = nib.Nifti1Header.from_header(header)
    else:
        header = header.copy()
    zooms = header.get_zooms()[:3]
    header.set_data_shape(data.shape)
    header.set_zooms(zooms)
    return header


def read_volume(
    path: str | os.PathLike[str],
    *,
    channel: int | None = None,
    dtype: DTypeLike | None = np.float32,
    series: str | None = None,
) -> Volume:
    """Read a 3-D NIfTI image, checking it once.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii`` or ``.nii.gz`` file.
    channel : int, optional
        For a 4-D file ``(X, Y, Z, C)``, the channel to take (``0 <= channel < C``).
    dtype : numpy dtype or None, default float32
        The dtype of :attr:`Volume.data` (scaling by ``scl_slope``/``scl_inter`` applied);
        ``None`` keeps nibabel's dtype.

    Returns
    -------
    Volume

    Raises
    ------
    InputFileError
        If the file is missing, not NIfTI, corrupt, 2-D, 4-D without ``channel``, the channel is
        out of range, or any value is NaN or infinite.

    A folder holding a DICOM series is read by :func:`medcl.io.dicom.read_dicom_series` into the
    same kind of volume (RAS+ affine; ``source`` set); ``series`` (a ``SeriesInstanceUID``)
    picks one series of a folder holding several.
    """
    if Path(path).is_dir():
        from .dicom import is_dicom_folder, read_dicom_series

        if is_dicom_folder(path):
            return read_dicom_series(path, series=series, dtype=dtype)
    if series is not None:
        raise ConfigError("a series UID was given but the image is not a DICOM folder",
                          path=path, fix="drop --series, or pass the DICOM series folder")
    p, img, raw = load_nifti(path)
    notes: list[str] = []
    data = _to_3d(p, raw, channel, notes)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    if np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.complexfloating):
        bad = ~np.isfinite(data)
        if bad.any():
            raise InputFileError(
                f"contains {int(bad.sum())} NaN or infinite value(s)",
                path=p,
                fix="fill or mask them before running (e.g. replace NaN with 0)",
            )
    header = _header_for(img, data)
    if int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0:
        notes.append("no sform/qform in the header: the affine is only the voxel sizes")
    return Volume(
        data=np.ascontiguousarray(data),
        affine=np.asarray(img.affine, dtype=np.float64).copy(),
        header=header,
        path=p,
        notes=notes,
    )


def _label_dtype(lo: int, hi: int) -> np.dtype:
    for dt in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype(np.int64)


def read_labels(
    path: str | os.PathLike[str],
    *,
    allowed: set[int] | None = None,
    like: Volume | None = None,
) -> Volume:
    """Read a 3-D integer label map.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.nii`` or ``.nii.gz`` label file.
    allowed : set of int, optional
        The codes permitted besides background 0; other codes raise an error listing them.
    like : Volume, optional
        The image the labels belong to; shape and affine must agree (``np.allclose``,
        ``atol=1e-3``).

    Returns
    -------
    Volume
        ``data`` has the smallest of uint8, int16, int32 (or int64) that holds the codes.

    Raises
    ------
    InputFileError
        Besides the cases of :func:`read_volume`: non-integer values, unknown codes, or geometry
        that differs from ``like``.
    """
    vol = read_volume(path, dtype=None)
    p = vol.path
    data = vol.data
    if not np.issubdtype(data.dtype, np.integer):
        if np.issubdtype(data.dtype, np.bool_):
            data = data.astype(np.uint8)
        else:
            frac = data != np.round(data)
            if frac.any():
                raise InputFileError(
                    f"is not a label map: {int(frac.sum())} voxel(s) have non-integer values",
                    path=p,
                    fix="pass a segmentation with integer codes (did you pass the image?)",
                )
    codes = np.unique(data)
    if codes.size:
        lo, hi = int(codes.min()), int(codes.max())
    else:
        lo = hi = 0
    data = data.astype(_label_dtype(lo, hi))
    if allowed is not None:
        ok = set(int(c) for c in allowed) | {0}
        unknown = sorted(int(c) for c in codes if int(c) not in ok)
        if unknown:
            raise InputFileError(
                f"has unknown label code(s) {unknown}; allowed: {sorted(ok)}",
                path=p,
                fix="remap the labels to the allowed codes (see the data card's mapping)",
            )
    if like is not None:
        why = []
        if tuple(data.shape) != tuple(like.data.shape):
            why.append(f"shape {tuple(data.shape)} vs {tuple(like.data.shape)}")
        elif not np.allclose(vol.affine, like.affine, atol=_GEOMETRY_ATOL):
            why.append("affine differs")
        if why:
            image = like.path if like.path is not None else "the image"
            raise InputFileError(
                f"geometry differs from {image} ({'; '.join(why)})",
                path=p,
                fix="resample the labels onto the image grid or pass the matching image",
            )
    header = vol.header.copy()
    header.set_data_dtype(data.dtype)
    return Volume(data=data, affine=vol.affine, header=header, path=p, notes=vol.notes)


def write_volume(
    path: str | os.PathLike[str],
    data: ArrayLike,
    like: Volume,
    *,
    dtype: DTypeLike | None = None,
) -> Path:
    """Write ``data`` with the geometry of ``like`` (affine, header), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Output ``.nii`` or ``.nii.gz``; never ``like.path``.
    data : array_like, shape like ``like.data`` (3-D) or ``(X, Y, Z, C)``
        Values to write.
    like : Volume
        The volume whose geometry the output keeps.
    dtype : numpy dtype, optional
        On-disk dtype (e.g. ``uint8`` or ``int16`` for labels); default ``data``'s dtype
        (bool is written as uint8). The header's data type is set to it, and any intensity
        scaling of ``like`` is dropped.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ConfigError
        If ``path`` is not a NIfTI name.
    InputFileError
        If ``path`` is ``like``'s file.
    ValueError
        If ``data``'s spatial shape differs from ``like``'s.
    """
    out = Path(path)
    if out.name.lower().endswith(".dcm"):
        from .dicom import write_seg  # a DICOM-read volume's labels as a DICOM SEG

        return write_seg(out, data, like)
    if not _is_nifti_name(out):
        raise ConfigError(
            f"output must be a NIfTI file, got suffix {''.join(out.suffixes) or 'none'!r}",
            path=out,
            fix="name the output *.nii.gz (or *.nii)",
        )
    if like.path is not None:
        refuse_overwrite(out, like.path)
    arr = np.asarray(data)
    if arr.shape[:3] != tuple(like.data.shape[:3]) or arr.ndim not in (3, 4):
        raise ValueError(
            f"data shape {arr.shape} does not match the reference volume {like.data.shape}"
        )
    if dtype is None:
        dtype = np.uint8 if arr.dtype == np.bool_ else arr.dtype
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.integer) and not np.issubdtype(arr.dtype, np.integer):
        arr = np.round(arr)
    arr = arr.astype(dt, copy=False)
    header = like.header.copy()
    header.set_data_dtype(dt)
    header.set_data_shape(arr.shape)
    zooms = tuple(like.header.get_zooms()[:3])
    header.set_zooms(zooms + ((1.0,) if arr.ndim == 4 else ()))
    header.set_slope_inter(None, None)
    header["cal_min"] = 0
    header["cal_max"] = 0
    img = nib.Nifti1Image(arr, like.affine, header)
    img.set_data_dtype(dt)
    with atomic_path(out) as tmp:
        nib.save(img, tmp)
    return out


@dataclass(frozen=True)
class Canonical:
    """The map between a volume's stored voxel order and the RAS+ canonical order.

    Models process volumes in one orientation (RAS+: +x right, +y anterior, +z superior, up to
    axis permutation and flips only, no resampling); outputs are written back in the input's
    voxel order, so shape, affine and header stay those of the input file.

    Attributes
    ----------
    shape : tuple of int
        The stored (input) shape ``(X, Y, Z)``.
    to_ras : numpy.ndarray
        nibabel orientation transform (3, 2) from the stored axes to RAS.
    from_ras : numpy.ndarray
        Its inverse.
    zooms : tuple of float
        Voxel sizes (mm) along the three RAS axes.

    Examples
    --------
    >>> can = Canonical.of(vol)  # doctest: +SKIP
    >>> ras = can.forward(vol.data); mask = model(ras); out = can.backward(mask)  # doctest: +SKIP
    """

    shape: tuple[int, int, int]
    to_ras: np.ndarray
    from_ras: np.ndarray
    zooms: tuple[float, float, float]

    @classmethod
    def of(cls, vol: Volume | np.ndarray, affine: ArrayLike | None = None) -> Canonical:
        """The map for a :class:`Volume` (or an array plus its ``affine``)."""
        from nibabel.orientations import axcodes2ornt, io_orientation, ornt_transform

        if isinstance(vol, Volume):
            shape, aff = vol.shape, vol.affine
        else:
            if affine is None:
                raise ValueError("Canonical.of(array) needs the affine")
            shape, aff = tuple(int(s) for s in np.shape(vol)[:3]), np.asarray(affine, float)
        src = io_orientation(aff)
        ras = axcodes2ornt("RAS")
        to_ras = ornt_transform(src, ras)
        norms = np.sqrt((np.asarray(aff, float)[:3, :3] ** 2).sum(0))
        # row i sends stored axis i to RAS axis to_ras[i, 0]
        zooms = [0.0, 0.0, 0.0]
        for i in range(3):
            zooms[int(to_ras[i, 0])] = float(norms[i])
        return cls(shape=tuple(shape), to_ras=to_ras, from_ras=ornt_transform(ras, src),
                   zooms=tuple(zooms))  # type: ignore[arg-type]

    @property
    def ras_shape(self) -> tuple[int, int, int]:
        """Shape of the volume in RAS order."""
        out = [0, 0, 0]
        for i in range(3):
            out[int(self.to_ras[i, 0])] = self.shape[i]
        return tuple(out)  # type: ignore[return-value]

    def forward_affine(self, affine: ArrayLike) -> np.ndarray:
        """The voxel-to-world matrix of the RAS view, given the stored volume's ``affine``.

        The same world points as ``affine``: ``forward_affine(affine) @ ras_index`` equals
        ``affine @ stored_index`` for the voxel at ``index_forward(stored_index)``. This is the
        affine nibabel's ``as_closest_canonical`` gives.
        """
        from nibabel.orientations import inv_ornt_aff

        aff = np.asarray(affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"forward_affine needs a (4, 4) affine, got shape {aff.shape}")
        return aff @ inv_ornt_aff(self.to_ras, self.shape)

    def forward(self, array: np.ndarray) -> np.ndarray:
        """Stored order -> RAS (extra trailing axes are carried along)."""
        from nibabel.orientations import apply_orientation

        return apply_orientation(np.asarray(array), self.to_ras)

    def backward(self, array: np.ndarray) -> np.ndarray:
        """RAS order -> stored order."""
        from nibabel.orientations import apply_orientation

        return apply_orientation(np.asarray(array), self.from_ras)

    def index_forward(self, ijk: Sequence[float]) -> np.ndarray:
        """A stored voxel index ``(i, j, k)`` -> the same voxel's RAS index."""
        out = np.zeros(3, dtype=np.int64)
        for i in range(3):
            axis, flip = int(self.to_ras[i, 0]), self.to_ras[i, 1] < 0
            v = int(round(float(ijk[i])))
            out[axis] = self.shape[i] - 1 - v if flip else v
        return out


def axial_check(vol: Volume) -> str | None:
    """Say whether a scan looks like an axial acquisition (slices across the S-I axis).

    The slice axis is the voxel axis with the thickest spacing (or, for near-isotropic
    voxels, the axis closest to superior-inferior). A warning is returned when the thickest
    axis is not the one closest to S-I, or when the slice axis deviates by more than 30 degrees
    from S-I.

    Parameters
    ----------
    vol : Volume

    Returns
    -------
    str or None
        The warning text, or ``None`` when the geometry is axial.
    """
    m = np.asarray(vol.affine, dtype=np.float64)[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    if np.any(norms <= 0):
        return "the affine is degenerate (a voxel axis has zero length); check the header"
    cosines = m / norms
    si = np.abs(cosines[2])  # |cos| between each voxel axis and the S-I world axis
    closest = int(np.argmax(si))
    spacing = np.asarray(vol.spacing, dtype=np.float64)
    thickest = int(np.argmax(spacing))
    anisotropic = spacing.max() > _ANISOTROPY * spacing.min()
    slice_axis = thickest if anisotropic else closest
    tilt = math.degrees(math.acos(min(1.0, float(si[slice_axis]))))
    where = f" ({vol.path})" if vol.path is not None else ""
    problems = []
    if anisotropic and thickest != closest:
        problems.append(
            f"the thickest voxel axis ({thickest}, {spacing[thickest]:.2f} mm) is not the one "
            f"closest to superior-inferior ({closest})"
        )
    if tilt > _MAX_SLICE_TILT_DEG:
        problems.append(
            f"the slice direction is {tilt:.0f} degrees from superior-inferior "
            f"(more than {_MAX_SLICE_TILT_DEG:.0f})"
        )
    if not problems:
        return None
    return (
        f"scan{where} does not look like an axial T2 acquisition: "
        + "; ".join(problems)
        + ". The models expect axial slices; pass the axial series or reorient/resample it."
    )

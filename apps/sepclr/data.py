"""From folders of images to the tensors SepCLR trains on.

Contrastive analysis (CA) compares two sets of images: a *background* set (e.g. healthy
subjects) and a *target* set (e.g. patients). SepCLR learns a common space shared by both and a
salient space holding what only the target shows [1]_. This module reads the two sets from
plain folders of 2-D images (PNG/JPEG) or NIfTI files (one 2-D slice each), brings them to one
size and channel count, and reads the optional CSV of per-image attributes used to evaluate the
learnt spaces.

Every reader validates its input once and raises :class:`medcl.io.InputFileError` naming the file
or folder and the fix. Inputs are only read, never modified. What a reader changed on the way
(resizing, slicing, channel conversion, intensity scaling) is reported in ``notes``.

References
----------
.. [1] R. Louiset, E. Duchesnay, A. Grigis and P. Gori, "Separating common from salient patterns
   with Contrastive Representation Learning", ICLR 2024, arXiv:2402.11928.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from medcl.io import ConfigError, InputFileError
from medcl.io.cases import IMAGE_2D_SUFFIXES
from medcl.io.images import min_max, read_image
from medcl.io.nifti import NIFTI_SUFFIXES

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = [
    "GROUPS",
    "IMAGE_SUFFIXES",
    "MIN_SIZE",
    "ContrastiveData",
    "ImageSet",
    "list_image_files",
    "load_attributes",
    "load_contrastive",
    "load_group_attributes",
    "load_image_folder",
]

IMAGE_SUFFIXES: tuple[str, ...] = (*IMAGE_2D_SUFFIXES, *NIFTI_SUFFIXES)
"""File suffixes read as images (case-insensitive); other files in a folder are ignored."""

MIN_SIZE = 8
"""Smallest accepted image height and width, in pixels."""

GROUPS: tuple[str, str] = ("background", "target")
"""Names of the two contrastive-analysis groups, as used in ``ContrastiveData.names``."""

PathLike = str | os.PathLike[str]


@dataclass
class ImageSet:
    """The images of one folder, as one tensor.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, C, H, W)`` float32 in ``[0, 1]``.
    names : list of str
        File names (e.g. ``"img_001.png"``), sorted and unique, one per image.
    folder : pathlib.Path
        The folder read.
    notes : list of str
        Human-readable notes about what was changed (resizes, slices, channel conversions,
        intensity scaling, ignored files).
    """

    images: torch.Tensor
    names: list[str]
    folder: Path
    notes: list[str] = field(default_factory=list)


@dataclass
class ContrastiveData:
    """A background set and a target set, stacked for contrastive analysis [1]_.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, C, H, W)`` float32 in ``[0, 1]``: the background rows first, then the target rows.
    is_target : torch.Tensor
        ``(N,)`` bool, True for the target rows.
    names : list of str
        ``"background/<file>"`` and ``"target/<file>"``, one per row.
    notes : list of str
        What was changed while reading, each note prefixed with its group.
    """

    images: torch.Tensor
    is_target: torch.Tensor
    names: list[str]
    notes: list[str] = field(default_factory=list)


# -- listing ------------------------------------------------------------------------------------
def _image_suffix(name: str) -> str | None:
    lower = name.lower()
    for suffix in sorted(IMAGE_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return suffix
    return None


def _is_nifti(name: str) -> bool:
    return _image_suffix(name) in NIFTI_SUFFIXES


def _check_folder(folder: Path, what: str = "image folder") -> None:
    if not folder.exists():
        raise InputFileError(
            f"{what} not found", path=folder, fix="check the path (it must be an existing folder)"
        )
    if not folder.is_dir():
        raise InputFileError(
            f"{what} is a file, not a folder",
            path=folder,
            fix="pass the folder that holds the images, not a single file",
        )


def list_image_files(folder: PathLike) -> tuple[list[Path], int]:
    """List the image files of a folder (not recursive), sorted by name.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder.

    Returns
    -------
    files : list of pathlib.Path
        The files whose name ends with one of :data:`IMAGE_SUFFIXES`, sorted by name; hidden
        files (leading dot) are skipped.
    n_ignored : int
        How many other files the folder holds (sub-folders not counted).

    Raises
    ------
    InputFileError
        If ``folder`` does not exist or is not a folder.
    """
    folder = Path(folder)
    _check_folder(folder)
    files: list[Path] = []
    ignored = 0
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if not entry.is_file():
            continue
        if not entry.name.startswith(".") and _image_suffix(entry.name) is not None:
            files.append(entry)
        else:
            ignored += 1
    return files, ignored


def _no_images_error(folder: Path, what: str = "the folder holds no image files") -> InputFileError:
    return InputFileError(
        what,
        path=folder,
        fix=f"put images with one of the suffixes {', '.join(IMAGE_SUFFIXES)} directly in "
        "this folder (sub-folders are not read)",
    )


# -- reading one file ---------------------------------------------------------------------------
@dataclass
class _Raw:
    """One decoded image: ``pixels`` is ``(H, W, C)`` float, C in {1, 3}, values in [0, 1]."""

    path: Path
    pixels: np.ndarray
    rgb_as_gray: bool = False


def _read_nifti(path: Path, nifti_slice: int | None) -> tuple[np.ndarray, list[str]]:
    """Read a NIfTI file as one ``(H, W, 1)`` slice, min-max scaled to [0, 1]."""
    from medcl.io.nifti import load_nifti

    _, _, data = load_nifti(path)
    shape = tuple(int(s) for s in data.shape)
    while data.ndim > 2 and data.shape[-1] == 1:  # (X, Y, 1) is a 2-D image
        data = data[..., 0]
    flags: list[str] = []
    if data.ndim == 3:
        depth = data.shape[-1]
        index = depth // 2 if nifti_slice is None else nifti_slice
        if not 0 <= index < depth:
            raise InputFileError(
                f"slice {index} is out of range: the volume {shape} has {depth} slices along its "
                "last axis",
                path=path,
                fix=f"choose a slice index from 0 to {depth - 1}",
            )
        data = data[:, :, index]
        flags.append(f"slice:{index}/{depth}")
    elif data.ndim != 2:
        raise InputFileError(
            f"the NIfTI image has shape {shape}; only 2-D images and 3-D volumes are supported",
            path=path,
            fix="give a 2-D image or a single 3-D volume (split 4-D series into one file per "
            "volume)",
        )
    flags.append("minmax")
    return min_max(np.asarray(data))[:, :, None], flags


def _read_one(path: Path, nifti_slice: int | None) -> tuple[_Raw, list[str]]:
    """Decode one file and check its size; RGB with three equal channels becomes grayscale.

    Returns the image and its flags (``alpha``, ``minmax``, ``slice:<i>/<depth>``,
    ``rgb_as_gray``).
    """
    if _is_nifti(path.name):
        pixels, flags = _read_nifti(path, nifti_slice)
    else:
        pixels, flags = read_image(path)
    height, width = pixels.shape[:2]
    if height < MIN_SIZE or width < MIN_SIZE:
        raise InputFileError(
            f"the image is {height}x{width} pixels; images must be at least "
            f"{MIN_SIZE}x{MIN_SIZE}",
            path=path,
            fix="remove the file or replace it by a larger image",
        )
    raw = _Raw(path, pixels)
    if (
        pixels.shape[2] == 3
        and np.array_equal(pixels[..., 0], pixels[..., 1])
        and (np.array_equal(pixels[..., 0], pixels[..., 2]))
    ):
        raw.pixels = pixels[..., :1]
        raw.rgb_as_gray = True
        flags = [*flags, "rgb_as_gray"]
    return raw, flags


def _reading_notes(
    raws: Sequence[_Raw], flags: Sequence[str], ignored: int, nifti_slice: int | None
) -> list[str]:
    """Sentences on what reading a folder changed, from the flags of all its files."""
    counts = Counter(f for f in flags if not f.startswith("slice:"))
    slices = Counter(f.removeprefix("slice:") for f in flags if f.startswith("slice:"))
    notes: list[str] = []
    if ignored:
        notes.append(
            f"ignored {ignored} file(s) without an image suffix ({', '.join(IMAGE_SUFFIXES)})"
        )
    for where, n in sorted(slices.items()):
        index, depth = where.split("/")
        chosen = "the chosen" if nifti_slice is not None else "the middle"
        notes.append(
            f"{n} NIfTI volume(s) of {depth} slices: used {chosen} slice {index} of the last axis"
        )
    n_nifti = sum(1 for r in raws if _is_nifti(r.path.name))
    if n_nifti:
        notes.append(f"{n_nifti} NIfTI image(s): intensities min-max scaled to [0, 1] per slice")
    n_minmax = counts["minmax"] - n_nifti
    if n_minmax:
        notes.append(
            f"{n_minmax} image(s) with float or non-8/16-bit pixels: min-max scaled to [0, 1]"
        )
    if counts["alpha"]:
        notes.append(f"{counts['alpha']} image(s) with an alpha channel: alpha dropped")
    if counts["rgb_as_gray"]:
        notes.append(
            f"{counts['rgb_as_gray']} RGB image(s) with three identical channels read as grayscale"
        )
    return notes


def _read_folder(folder: PathLike, nifti_slice: int | None) -> tuple[list[_Raw], list[str]]:
    """Every image of a folder, in name order, and the notes on what reading changed."""
    folder = Path(folder)
    files, ignored = list_image_files(folder)
    if not files:
        raise _no_images_error(folder)
    raws: list[_Raw] = []
    flags: list[str] = []
    for path in files:
        raw, more = _read_one(path, nifti_slice)
        raws.append(raw)
        flags.extend(more)
    return raws, _reading_notes(raws, flags, ignored, nifti_slice)


# -- assembling ---------------------------------------------------------------------------------
def _check_options(size: int | None, channels: int | None, nifti_slice: int | None) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, int)):
        raise ConfigError(f"size must be an integer, got {size!r}", fix="pass e.g. --size 64")
    if size is not None and size < MIN_SIZE:
        raise ConfigError(
            f"size {size} is too small; images must be at least {MIN_SIZE}x{MIN_SIZE}",
            fix=f"choose a size of at least {MIN_SIZE} (e.g. --size 64)",
        )
    if channels is not None and channels not in (1, 3):
        raise ConfigError(
            f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}",
            fix="pass --channels 1 or --channels 3, or leave it out to decide from the images",
        )
    if nifti_slice is not None and (isinstance(nifti_slice, bool) or nifti_slice < 0):
        raise ConfigError(
            f"nifti_slice must be a non-negative slice index, got {nifti_slice!r}",
            fix="pass a slice index along the volume's last axis, or leave it out for the middle "
            "slice",
        )


def _auto_channels(raws: Sequence[_Raw]) -> int:
    return 1 if all(r.pixels.shape[2] == 1 for r in raws) else 3


def _most_common_shape(raws: Sequence[_Raw]) -> tuple[int, int]:
    # Counter keeps first-seen order among ties, and raws are sorted by name: deterministic.
    counts = Counter(r.pixels.shape[:2] for r in raws)
    return counts.most_common(1)[0][0]


def _assemble(
    raws: Sequence[_Raw], shape: tuple[int, int], channels: int, *, size_reason: str
) -> tuple[torch.Tensor, list[str]]:
    """Convert every image to ``channels`` and ``shape`` and stack into ``(N, C, H, W)``."""
    from skimage.color import rgb2gray
    from skimage.transform import resize

    notes: list[str] = []
    to_gray = to_rgb = resized = 0
    out = np.empty((len(raws), channels, *shape), dtype=np.float32)
    for i, raw in enumerate(raws):
        pixels = raw.pixels
        if pixels.shape[2] != channels:
            if channels == 1:
                pixels = rgb2gray(pixels)[:, :, None]
                to_gray += 1
            else:
                pixels = np.repeat(pixels, 3, axis=2)
                to_rgb += 1
        if pixels.shape[:2] != shape:
            pixels = resize(
                pixels, (*shape, channels), order=1, anti_aliasing=True, preserve_range=True
            )
            resized += 1
        out[i] = np.clip(pixels, 0.0, 1.0).transpose(2, 0, 1)
    if to_gray:
        notes.append(f"{to_gray} RGB image(s) converted to grayscale (luminance)")
    if to_rgb:
        notes.append(f"{to_rgb} grayscale image(s) repeated to 3 channels")
    if resized:
        notes.append(
            f"resized {resized} of {len(raws)} image(s) to {shape[0]}x{shape[1]} ({size_reason})"
        )
    return torch.from_numpy(out), notes


def _target_shape(raws: Sequence[_Raw], size: int | None) -> tuple[tuple[int, int], str]:
    if size is not None:
        return (size, size), "the requested size"
    return _most_common_shape(raws), "the most common size in the folder"


def load_image_folder(
    folder: PathLike,
    *,
    size: int | None = None,
    channels: int | None = None,
    nifti_slice: int | None = None,
) -> ImageSet:
    """Read every image of a folder into one ``(N, C, H, W)`` tensor in ``[0, 1]``.

    Files are read in name order, not recursively; a file counts as an image when its name ends
    with one of :data:`IMAGE_SUFFIXES` (hidden files are skipped). 8- and 16-bit PNG/JPEG pixels
    are divided by their type's maximum, float pixels are min-max scaled per image. A 2-D NIfTI
    image is used as is; a 3-D volume gives one slice along its last axis (the middle one unless
    ``nifti_slice`` is given; for axially stored volumes an axial slice), min-max scaled per
    slice. The array is used as stored (rows = first voxel axis), without reorienting.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder of images.
    size : int, optional
        Resize every image to ``size x size`` (bilinear, anti-aliased). When left out and the
        images differ in size, all are resized to the most common ``(H, W)``.
    channels : int, optional
        1 (grayscale, RGB converted by luminance) or 3 (grayscale repeated). When left out: 1 if
        every image is grayscale, else 3. RGB images whose three channels are identical count as
        grayscale; alpha channels are dropped.
    nifti_slice : int, optional
        Index of the slice taken from 3-D NIfTI volumes along their last axis.

    Returns
    -------
    ImageSet
        The images, their file names and notes on every change made.

    Raises
    ------
    InputFileError
        If the folder is missing or holds no image file, a file cannot be decoded, a NIfTI file is
        neither 2-D nor 3-D (or ``nifti_slice`` is out of its range), or an image is smaller than
        8x8; the message names the file.
    ConfigError
        If ``size``, ``channels`` or ``nifti_slice`` has an invalid value.
    """
    _check_options(size, channels, nifti_slice)
    folder = Path(folder)
    raws, notes = _read_folder(folder, nifti_slice)
    n_channels = channels if channels is not None else _auto_channels(raws)
    shape, reason = _target_shape(raws, size)
    images, more = _assemble(raws, shape, n_channels, size_reason=reason)
    return ImageSet(
        images=images, names=[r.path.name for r in raws], folder=folder, notes=notes + more
    )


def load_contrastive(
    background: PathLike | None,
    target: PathLike | None,
    *,
    size: int | None = None,
    channels: int | None = None,
    nifti_slice: int | None = None,
) -> ContrastiveData:
    """Read a background folder and a target folder with one common size and channel count.

    In contrastive analysis [1]_ the background set (e.g. healthy subjects) holds only the
    common factors of variation, the target set (e.g. patients) also the salient ones. Both
    folders are read as by :func:`load_image_folder`. The channel count is ``channels`` or the
    larger of the two folders' own; the size is ``size x size`` or else the background's most
    common size, to which every target image of another size is resized (noted).

    Parameters
    ----------
    background, target : str or os.PathLike
        The two folders; both are required.
    size, channels, nifti_slice
        As in :func:`load_image_folder`.

    Returns
    -------
    ContrastiveData
        Background rows first, then target rows; names ``"background/<file>"`` and
        ``"target/<file>"``.

    Raises
    ------
    InputFileError
        If either set is missing or empty ("contrastive analysis needs both a background and a
        target set"), or as :func:`load_image_folder` does.
    ConfigError
        As :func:`load_image_folder`.
    """
    _check_options(size, channels, nifti_slice)
    need_both = "contrastive analysis needs both a background and a target set"
    for group, folder in zip(GROUPS, (background, target), strict=True):
        if folder is None or os.fspath(folder) == "":
            raise InputFileError(
                f"no {group} set was given; {need_both}",
                fix=f"pass --{group} DIR, a folder of {group} images",
            )
        files, _ = list_image_files(folder)
        if not files:
            raise _no_images_error(
                Path(folder), f"the {group} folder holds no image files; {need_both}"
            )

    bg_raws, bg_notes = _read_folder(background, nifti_slice)  # type: ignore[arg-type]
    tg_raws, tg_notes = _read_folder(target, nifti_slice)  # type: ignore[arg-type]
    n_channels = (
        channels if channels is not None else max(_auto_channels(bg_raws), _auto_channels(tg_raws))
    )
    shape, reason = _target_shape(bg_raws, size)
    bg_images, bg_more = _assemble(bg_raws, shape, n_channels, size_reason=reason)
    tg_reason = reason if size is not None else "the background's most common size"
    tg_images, tg_more = _assemble(tg_raws, shape, n_channels, size_reason=tg_reason)
    notes = [f"background: {n}" for n in bg_notes + bg_more]
    notes += [f"target: {n}" for n in tg_notes + tg_more]
    images = torch.cat([bg_images, tg_images])
    is_target = torch.zeros(len(images), dtype=torch.bool)
    is_target[len(bg_raws) :] = True
    names = [f"background/{r.path.name}" for r in bg_raws]
    names += [f"target/{r.path.name}" for r in tg_raws]
    return ContrastiveData(images=images, is_target=is_target, names=names, notes=notes)


# -- attributes ---------------------------------------------------------------------------------
def _listing(items: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(s) for s in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{shown}{more}"


def _read_csv(csv_path: PathLike) -> pd.DataFrame:
    import pandas as pd

    path = Path(csv_path)
    if not path.is_file():
        raise InputFileError(
            "attributes CSV not found" if not path.exists() else "attributes CSV is not a file",
            path=path,
            fix="check the path of the CSV (columns: file, then one column per attribute)",
        )
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several parser errors
        raise InputFileError(
            f"cannot read the CSV ({type(exc).__name__}: {exc})",
            path=path,
            fix="save the attributes as a comma-separated file with a header row",
        ) from exc
    df.columns = [str(c).strip() for c in df.columns]
    if "file" not in df.columns:
        raise InputFileError(
            f"the CSV has no 'file' column (columns: {_listing(list(df.columns), 10) or 'none'})",
            path=path,
            fix="add a header column named 'file' holding each image's file name, e.g. "
            "'img_001.png'",
        )
    if df["file"].isna().any():
        rows = [str(i + 2) for i in np.flatnonzero(df["file"].isna().to_numpy())]
        raise InputFileError(
            f"empty 'file' value on line(s) {', '.join(rows[:5])}",
            path=path,
            fix="give every row the file name of its image",
        )
    df["file"] = df["file"].astype(str).str.strip()
    return df


def _check_unique(keys: pd.Series, path: Path, what: str = "file name") -> None:
    dup = keys[keys.duplicated()].unique().tolist()
    if dup:
        raise InputFileError(
            f"{len(dup)} duplicate {what}(s) in the CSV: {_listing(dup)}",
            path=path,
            fix="keep one row per image",
        )


def _check_covered(index: pd.Index, names: Sequence[str], path: Path, fix: str) -> None:
    missing = [n for n in names if n not in index]
    if missing:
        raise InputFileError(
            f"{len(missing)} image(s) have no row in the CSV: {_listing(missing)}",
            path=path,
            fix=fix,
        )


def load_attributes(csv_path: PathLike, names: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV of per-image attributes, indexed by image file name.

    The CSV has a column ``file`` holding the file names of the images (as in
    :attr:`ImageSet.names`) and any number of attribute columns (e.g. ``age``, ``subtype``);
    attributes are used only to evaluate the learnt common and salient spaces [1]_.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.
    names : sequence of str, optional
        The image names that must all have a row. When given, the result holds exactly these
        rows in this order; rows for other files are ignored.

    Returns
    -------
    pandas.DataFrame
        The attribute columns, indexed by ``file``.

    Raises
    ------
    InputFileError
        If the CSV is missing or unreadable, has no ``file`` column, repeats a file name, or
        (with ``names``) lacks a row for some image; the message names the CSV and lists up to
        five missing images with their count.
    """
    path = Path(csv_path)
    df = _read_csv(path)
    _check_unique(df["file"], path)
    df = df.set_index("file")
    if names is not None:
        _check_covered(
            df.index,
            list(names),
            path,
            fix="add a row for every image (column 'file' = the image's file name)",
        )
        df = df.loc[list(names)]
    return df


def _group_keys(df: pd.DataFrame, path: Path) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Each row's ``"<group>/<file>"`` key, group and bare file name, from a ``group`` column or
    from group-prefixed ``file`` values."""
    prefixes = tuple(f"{g}/" for g in GROUPS)
    if "group" not in df.columns:
        if not df["file"].str.startswith(prefixes).all():
            raise InputFileError(
                "the CSV has no 'group' column and its 'file' values are not prefixed with "
                "'background/' or 'target/'",
                path=path,
                fix="add a 'group' column (background or target), or write the files as "
                "'background/<file>' and 'target/<file>'",
            )
        parts = df["file"].str.partition("/")
        return df["file"], parts[0], parts[2]
    groups = df["group"].astype(str).str.strip().str.lower()
    bad = sorted(set(groups) - set(GROUPS))
    if bad:
        raise InputFileError(
            f"unknown value(s) in column 'group': {_listing(bad)}",
            path=path,
            fix="use 'background' or 'target' in the 'group' column",
        )
    files = df["file"]
    bare = files.where(~files.str.startswith(prefixes), files.str.partition("/")[2])
    return groups + "/" + bare, groups, bare


def load_group_attributes(csv_path: PathLike, data: ContrastiveData) -> pd.DataFrame:
    """Read one CSV of attributes covering both groups, aligned row for row with ``data``.

    The CSV identifies each image either by the columns ``file`` and ``group`` (``background``
    or ``target``) or by ``file`` values already prefixed with the group, e.g.
    ``"target/img_001.png"``.

    Parameters
    ----------
    csv_path : str or os.PathLike
        The CSV file.
    data : ContrastiveData
        The images the attributes describe.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``data.names`` (index name ``name``), in that order, with columns ``file``
        (the bare file name), ``group`` and the CSV's attribute columns.

    Raises
    ------
    InputFileError
        If the CSV is missing or unreadable, has no ``file`` column, has neither a ``group``
        column nor group-prefixed file names, holds an unknown group, repeats an image, or lacks
        rows for some images of ``data`` (up to five are listed with their count).
    """
    path = Path(csv_path)
    df = _read_csv(path)
    keys, groups, bare = _group_keys(df, path)
    df = df.drop(columns=[c for c in ("file", "group") if c in df.columns])
    df.insert(0, "group", groups.to_numpy())
    df.insert(0, "file", bare.to_numpy())
    df.index = keys.to_numpy()
    _check_unique(keys, path, what="image")
    _check_covered(
        df.index,
        data.names,
        path,
        fix="add a row for every image (columns 'file' and 'group', or 'file' as '<group>/<file>')",
    )
    out = df.loc[list(data.names)]
    out.index.name = "name"
    return out

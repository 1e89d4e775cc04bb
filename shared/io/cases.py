"""Cases on disk: nnU-Net/MSD-style folder pairs, and a resumable per-case result table.

A *case* is one image file, optionally with a label file of the same name in a second folder
(``images/case_001.nii.gz`` + ``labels/case_001.nii.gz``; nnU-Net's channel suffix
``case_001_0000.nii.gz`` is accepted on the image side). Batch jobs over many cases must not stop
at the first broken file and must resume after an interruption: :func:`run_cases` records one
or more rows per case in a CSV that is rewritten atomically after every case, and skips cases
already recorded. Given a ``signature`` (what the table is computed from: model, data folders,
options), it is recorded next to the CSV and a rerun with another signature is refused, so rows
of other inputs are never mixed in. It is :func:`medcl.io.units.run_units` with the unit key
``(method, case_id)``; commands that want its progress lines and shards call that directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InputFileError
from .nifti import NIFTI_SUFFIXES, strip_suffix
from .units import check_signature, signature_path

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["IMAGE_2D_SUFFIXES", "NIFTI_SUFFIXES", "case_id", "check_signature", "list_cases",
           "run_cases", "signature_path"]

IMAGE_2D_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
"""File name endings of 2-D images (lower case). NIfTI's are :data:`medcl.io.nifti.NIFTI_SUFFIXES`
(re-exported here)."""


def case_id(path: str | os.PathLike[str], suffixes: Sequence[str] = NIFTI_SUFFIXES) -> str:
    """The case name of an image file: ``case_001.nii.gz`` and ``case_001_0000.nii.gz`` both give
    ``case_001`` (nnU-Net's ``_0000`` channel suffix is dropped)."""
    name = Path(path).name
    stem = strip_suffix(name, suffixes)
    stem = name if stem is None else stem
    return stem[:-5] if stem.endswith("_0000") else stem


def list_cases(
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    *,
    suffixes: Sequence[str] = NIFTI_SUFFIXES,
    what: str = "image",
) -> list[tuple[str, Path, Path | None]]:
    """``(case, image, label)`` triples of a folder of images and, optionally, of labels.

    Parameters
    ----------
    images : path
        Folder of image files whose names end with one of ``suffixes`` (case-insensitive).
    labels : path, optional
        Folder holding one label file per image, named after the case (any of ``suffixes``).
    suffixes : sequence of str
        Accepted file name endings, lower case (the longest match wins; the first is the one
        named in messages). Default :data:`medcl.io.nifti.NIFTI_SUFFIXES`.
    what : str
        What one image is, for the error messages (e.g. ``"T2 volume"``).

    Raises
    ------
    InputFileError
        A folder is missing or holds no image, or a case has no label file.
    """
    images = Path(images)
    if not images.is_dir():
        raise InputFileError("image folder not found", path=images, fix="check the path")
    files = sorted(p for p in images.iterdir()
                   if p.is_file() and strip_suffix(p.name, suffixes) is not None)
    if not files:
        raise InputFileError(f"no {what} files ({', '.join(suffixes)}) in the folder",
                             path=images, fix=f"put one {what} per case in this folder")
    if labels is not None and not Path(labels).is_dir():
        raise InputFileError("label folder not found", path=labels, fix="check the path")
    out: list[tuple[str, Path, Path | None]] = []
    for f in files:
        cid = case_id(f, suffixes)
        label = None
        if labels is not None:
            label = next((Path(labels) / f"{cid}{s}" for s in suffixes
                          if (Path(labels) / f"{cid}{s}").exists()), None)
            if label is None:
                raise InputFileError(f"no label file for case {cid}", path=labels,
                                     fix=f"add {cid}{suffixes[0]} (the image's case name)")
        out.append((cid, f, label))
    return out


def run_cases(
    cases: Iterable[tuple[str, Any]],
    score: Callable[[str, Any], list[dict[str, Any]]],
    csv_path: str | os.PathLike[str],
    *,
    method: str,
    columns: Sequence[str],
    failed_rows: Callable[[str], list[dict[str, Any]]] | None = None,
    retry_failed: bool = False,
    on_case: Callable[[str, str], None] | None = None,
    signature: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Score many cases, batch-safe and resumable, in one CSV of rows per (method, case).

    For each ``(case_id, item)``: when ``csv_path`` already has a row for ``(method, case_id)``
    the case is skipped (unless ``retry_failed`` and all its rows failed); otherwise
    ``score(case_id, item)`` returns the case's rows. Any exception turns the case into
    ``failed_rows(error)`` (default: one row) with ``status="failed"`` and the error text, and the
    loop goes on. The table is rewritten atomically after every case, so an interrupted run
    resumes where it stopped.

    Parameters
    ----------
    cases : iterable of (str, object)
        Case names and whatever ``score`` needs (paths, a tuple of paths...).
    score : callable
        ``score(case_id, item) -> list of dict`` (columns besides method/case_id/status/error).
    csv_path : path
        The table; created with its folder if missing.
    method : str
        Stored in the ``method`` column; several methods share one table.
    columns : sequence of str
        Column order of the table (must include method, case_id, status, error).
    failed_rows : callable, optional
        ``failed_rows(error) -> list of dict`` rows to record for a failed case.
    retry_failed : bool
        Score again cases whose earlier rows all failed.
    on_case : callable, optional
        ``on_case(case_id, status)`` after each case scored here (``"ok"`` or ``"failed"``).
    signature : dict, optional
        What the table is computed from (e.g. model path, data folders, options; JSON-able).
        It is checked with :func:`check_signature` (a table of other inputs is refused with a
        :class:`ConfigError`) and recorded in :func:`signature_path` before any case is scored.

    Returns
    -------
    pandas.DataFrame
        The whole table (every method and case in the file).
    """
    from .units import Shard, run_units

    units = [({"method": method, "case_id": str(cid)}, item) for cid, item in cases]
    result = run_units(
        units, lambda key, item: score(key["case_id"], item), csv_path, columns=columns,
        signature=signature, retry_failed=retry_failed, failed_rows=failed_rows,
        progress="quiet", what="case", shard=Shard(),
        on_unit=None if on_case is None else lambda key, status: on_case(key["case_id"], status))
    return result.table

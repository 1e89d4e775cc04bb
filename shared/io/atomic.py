"""Atomic file writing: every file medcl writes goes through this module.

A writer first writes a temporary file in the target's folder and then renames it into place
with :func:`os.replace`, which is atomic on POSIX and Windows when both names are on the same
file system. A crash or an exception half-way through therefore leaves either the old file or the
new one, never a truncated mix, and no temporary file behind.

The primitive itself (:func:`atomic_path`, :func:`write_text`, :func:`write_bytes`) lives in
:mod:`medcl.util.atomic`, which every layer may import (the training engine of
:mod:`medcl.contrastive` writes its checkpoints and metrics through it too); this module builds
the I/O layer's writers on it (YAML, CSV, ``torch.save``, figures) and re-exports it, so that
``medcl.io.atomic`` stays the one import the apps need.

Heavy libraries (pandas, torch, matplotlib) are imported inside the functions that need them so
that ``import medcl.io`` stays fast.
"""

from __future__ import annotations

import dataclasses
import enum
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcl.util.atomic import PathLike, atomic_path, write_bytes, write_text

from .errors import InputFileError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "atomic_path",
    "refuse_overwrite",
    "save_figure",
    "save_torch",
    "to_plain",
    "write_bytes",
    "write_csv",
    "write_text",
    "write_yaml",
]

def to_plain(obj: Any) -> Any:
    """Convert ``obj`` into YAML-safe builtins.

    Dataclasses become dicts, paths become strings, tuples and sets become lists, and objects
    with a ``tolist`` method (NumPy arrays and scalars, torch tensors) are converted with it.

    Parameters
    ----------
    obj : Any
        A (nested) configuration value.

    Returns
    -------
    Any
        The same value built only from ``dict``, ``list``, ``str``, ``int``, ``float``,
        ``bool`` and ``None``.
    """
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {_plain_key(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return [to_plain(v) for v in sorted(obj, key=repr)]
    if hasattr(obj, "tolist"):
        return to_plain(obj.tolist())
    if isinstance(obj, enum.Enum):
        return to_plain(obj.value)
    return str(obj)


def _plain_key(key: Any) -> Any:
    if key is None or isinstance(key, bool | int | float | str):
        return key
    plain = to_plain(key)
    return plain if isinstance(plain, bool | int | float | str) else str(plain)


def write_yaml(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as YAML (``yaml.safe_dump``, keys in insertion order) atomically.

    The object is passed through :func:`to_plain` first, so dataclasses, paths and NumPy values
    are accepted.
    """
    import yaml

    text = yaml.safe_dump(to_plain(obj), sort_keys=False, allow_unicode=True)
    return write_text(path, text)


def write_csv(path: PathLike, df: pd.DataFrame, index: bool = False) -> Path:
    """Write a pandas DataFrame as CSV atomically and return the path."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Path(path)


def save_torch(path: PathLike, obj: Any) -> Path:
    """Save ``obj`` with :func:`torch.save` atomically and return the path."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_figure(path: PathLike, fig: Figure, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and return the path.

    The figure is not closed; the caller owns it.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return Path(path)


def _same_file(a: Path, b: Path) -> bool:
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:  # pragma: no cover - unreadable paths are compared by name
        pass
    return a.resolve() == b.resolve()


def refuse_overwrite(out: PathLike, inputs: PathLike | Iterable[PathLike]) -> None:
    """Raise :class:`InputFileError` if ``out`` is the same file as any of ``inputs``.

    Inputs are never overwritten: a command asked to write its output onto one of its inputs
    stops before reading anything.

    Parameters
    ----------
    out : str or os.PathLike
        The output path a command is about to write.
    inputs : str, os.PathLike or iterable of them
        The command's input files.

    Raises
    ------
    InputFileError
        If ``out`` resolves to (or is a hard link of) one of the inputs.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    out_path = Path(out)
    for item in inputs:
        if _same_file(out_path, Path(item)):
            raise InputFileError(
                f"output would overwrite the input file {os.fspath(item)}",
                path=out_path,
                fix="choose a different output path (inputs are never overwritten)",
            )

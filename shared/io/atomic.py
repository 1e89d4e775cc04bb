"""Atomic file writing: every file medcl writes goes through this module.

A writer first writes a temporary file in the target's folder and then renames it into place
with :func:`os.replace`, which is atomic on POSIX and Windows when both names are on the same
file system. A crash or an exception half-way through therefore leaves either the old file or the
new one, never a truncated mix, and no temporary file behind.

Heavy libraries (pandas, torch, matplotlib) are imported inside the functions that need them so
that ``import medcl.io`` stays fast.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

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

PathLike = str | os.PathLike[str]

_UMASK: int | None = None


def _default_mode() -> int:
    """Permission bits a plainly created file would get (``0o666`` less the umask)."""
    global _UMASK
    if _UMASK is None:
        current = os.umask(0o022)
        os.umask(current)
        _UMASK = current
    return 0o666 & ~_UMASK


def _split_suffix(name: str) -> tuple[str, str]:
    """Split ``"x.nii.gz"`` into ``("x", ".nii.gz")``; a leading dot is part of the stem."""
    base = name.lstrip(".")
    lead = name[: len(name) - len(base)]
    stem, dot, rest = base.partition(".")
    return lead + stem, (dot + rest if dot else "")


@contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    The temporary file lies in the same folder as ``path`` (created if missing), is hidden
    (leading dot) and keeps the target's full suffix, e.g. ``.x.tmp-ab12cd.nii.gz`` for
    ``x.nii.gz``, so libraries that choose a format from the suffix still work. On success it is
    renamed onto ``path`` with :func:`os.replace`; if the block raises, the temporary file is
    removed, ``path`` is left untouched and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.

    Yields
    ------
    pathlib.Path
        The temporary file to write (it exists, empty, when the block starts).

    Examples
    --------
    >>> with atomic_path("out/volume.nii.gz") as tmp:  # doctest: +SKIP
    ...     nibabel.save(image, tmp)
    """
    target = Path(path)
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    stem, suffix = _split_suffix(target.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            mode = target.stat().st_mode & 0o7777 if target.exists() else _default_mode()
            os.chmod(tmp, mode)
        except OSError:  # pragma: no cover - permissions are best effort
            pass
        os.replace(tmp, target)
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def write_text(path: PathLike, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


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

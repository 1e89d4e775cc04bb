"""The one atomic-write primitive of medcl: a temporary file in the target's folder, renamed.

Every file medcl writes goes through :func:`atomic_path`: the I/O layer's writers
(:mod:`medcl.io.atomic`: CSV, YAML, NIfTI, figures, ``torch.save``) and the training engine's
metrics tables and checkpoints (:mod:`medcl.contrastive.engine`). The writer fills a temporary
file in the same folder as the target and the file is then renamed onto the target with
:func:`os.replace`, which is atomic on POSIX and Windows when both names are on the same file
system. A crash or an exception half-way through therefore leaves either the old file or the new
one, never a truncated mix, and no temporary file behind.

This module imports only the standard library, so that every layer (the contrastive core, which
never imports :mod:`medcl.io`, and the I/O layer) may use it.

Examples
--------
>>> with atomic_path("out/table.csv") as tmp:  # doctest: +SKIP
...     frame.to_csv(tmp)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["PathLike", "atomic_path", "write_bytes", "write_text"]

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


def split_suffix(name: str) -> tuple[str, str]:
    """Split a file name at its first dot: ``"x.nii.gz"`` gives ``("x", ".nii.gz")``.

    A leading dot belongs to the stem (``".hidden.txt"`` gives ``(".hidden", ".txt")``).

    Parameters
    ----------
    name : str
        A file name without folders.

    Returns
    -------
    tuple of str
        ``(stem, suffix)``; the suffix is ``""`` when the name has no dot.
    """
    base = name.lstrip(".")
    lead = name[: len(name) - len(base)]
    stem, dot, rest = base.partition(".")
    return lead + stem, (dot + rest if dot else "")


def _fsync_file(path: Path) -> None:
    """Flush ``path``'s contents to the storage device (best effort where unsupported)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - e.g. file systems or platforms without fsync on read fds
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: PathLike, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path that replaces ``path`` when the block succeeds.

    The temporary file lies in the same folder as ``path`` (created if missing), is hidden
    (leading dot) and keeps the target's full suffix, e.g. ``.x.tmp-ab12cd.nii.gz`` for
    ``x.nii.gz``, so libraries that choose a format from the suffix still work. On success it
    gets the permissions of the file it replaces (or those of a plainly created file) and is
    renamed onto ``path`` with :func:`os.replace`; if the block raises, the temporary file is
    removed, ``path`` is left untouched and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    fsync : bool, default False
        Also flush the temporary file to the storage device before the rename, so that the new
        contents survive a power loss as well as a crash (used for checkpoints).

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
    stem, suffix = split_suffix(target.name)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{stem}.tmp-", suffix=suffix, dir=parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
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
    """Write ``text`` to ``path`` atomically (newlines as given) and return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    text : str
        The contents; ``"\\n"`` is written as is on every platform.
    encoding : str, default "utf-8"
        The text encoding.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as fh:
            fh.write(text)
    return Path(path)


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path.

    Parameters
    ----------
    path : str or os.PathLike
        The final file.
    data : bytes
        The contents.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)

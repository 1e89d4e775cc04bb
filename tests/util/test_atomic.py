"""Tests of medcl.util.atomic, the one atomic-write primitive every layer uses: a temporary file
in the target's folder, renamed on success, removed on failure, optionally flushed to disk."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from medcl.util import atomic
from medcl.util.atomic import atomic_path, split_suffix, write_bytes, write_text


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_success_renames_into_place(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "deeper" / "out.txt"
    seen: list[Path] = []
    with atomic_path(target) as tmp:
        seen.append(tmp)
        assert tmp.parent == target.parent
        assert tmp != target
        assert tmp.exists() and not target.exists()
        tmp.write_text("hello")
    assert target.read_text() == "hello"
    assert not seen[0].exists()
    assert _listing(target.parent) == ["out.txt"]


def test_temporary_keeps_full_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz")
        assert tmp.name.startswith(".x.tmp-")
        tmp.write_bytes(b"\x1f\x8b")
    with atomic_path(tmp_path / "model.pt") as tmp:
        assert tmp.suffix == ".pt"
        tmp.write_bytes(b"")
    with atomic_path(tmp_path / "README") as tmp:
        assert tmp.name.startswith(".README.tmp-")
        tmp.write_text("r")
    assert _listing(tmp_path) == ["README", "model.pt", "x.nii.gz"]


def test_exception_leaves_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "table.csv"
    target.write_text("old contents")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new con")
            raise RuntimeError("disk on fire")
    assert target.read_text() == "old contents"
    assert _listing(tmp_path) == ["table.csv"]


def test_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    target = write_text(tmp_path / "a.txt", "a")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask


def test_existing_permissions_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("a")
    os.chmod(target, 0o640)
    write_text(target, "b")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.read_text() == "b"


def test_write_text_and_bytes(tmp_path: Path) -> None:
    assert write_text(tmp_path / "t.md", "ä\nb\n").read_text(encoding="utf-8") == "ä\nb\n"
    assert write_bytes(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"


def test_split_suffix() -> None:
    assert split_suffix("x.nii.gz") == ("x", ".nii.gz")
    assert split_suffix("README") == ("README", "")
    assert split_suffix(".hidden.txt") == (".hidden", ".txt")
    assert split_suffix("..two") == ("..two", "")


def test_fsync_flushes_the_temporary_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append("fsync")
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append("replace")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    with atomic_path(tmp_path / "last.pt", fsync=True) as tmp:
        tmp.write_bytes(b"weights")
    assert events == ["fsync", "replace"]
    assert (tmp_path / "last.pt").read_bytes() == b"weights"
    events.clear()
    write_text(tmp_path / "a.txt", "a")  # the default: renamed without fsync
    assert events == ["replace"]


def test_failed_rename_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(src, dst) -> None:
        raise OSError("cross-device link")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="cross-device"):
        write_bytes(tmp_path / "x.bin", b"x")
    assert _listing(tmp_path) == []


def test_imports_no_other_layer_and_nothing_heavy() -> None:
    """The core and the I/O layer both import this module: it may import neither."""
    code = (
        "import sys, medcl.util.atomic\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'numpy', 'pandas', 'lightning', 'yaml', 'mne', 'monai')"
        " or m.startswith(('medcl.io', 'medcl.contrastive', 'medcl.dbsam', 'medcl.pirads',"
        " 'medcl.mvcnet', 'medcl.sepclr'))]\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_io_and_engine_share_the_primitive() -> None:
    from medcl.contrastive import engine
    from medcl.io import atomic as io_atomic

    assert io_atomic.atomic_path is atomic_path
    assert io_atomic.write_text is write_text and io_atomic.write_bytes is write_bytes
    assert engine.atomic_path is atomic_path
    assert not hasattr(engine, "_atomic_write")

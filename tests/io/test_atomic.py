"""Tests of medcl.io.atomic: the I/O layer's writers (YAML, CSV, torch, figures), built on the
primitive of medcl.util.atomic (tested in tests/util/test_atomic.py), and refuse_overwrite."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import yaml

from medcl.io.atomic import (
    atomic_path,
    refuse_overwrite,
    save_figure,
    save_torch,
    to_plain,
    write_bytes,
    write_csv,
    write_text,
    write_yaml,
)
from medcl.io.errors import InputFileError


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_public_api_reexports_the_primitive(tmp_path: Path) -> None:
    """Apps import the primitive from medcl.io.atomic: it is the one of medcl.util.atomic."""
    from medcl.util import atomic as util_atomic

    assert atomic_path is util_atomic.atomic_path
    assert write_text is util_atomic.write_text and write_bytes is util_atomic.write_bytes
    with atomic_path(tmp_path / "v.nii.gz") as tmp:
        assert tmp.name.startswith(".v.tmp-") and tmp.name.endswith(".nii.gz")
        tmp.write_bytes(b"\x1f\x8b")
    assert write_text(tmp_path / "t.md", "ä\n").read_text(encoding="utf-8") == "ä\n"
    assert write_bytes(tmp_path / "b.bin", b"\x00").read_bytes() == b"\x00"
    assert _listing(tmp_path) == ["b.bin", "t.md", "v.nii.gz"]


def test_failing_writer_leaves_no_file(tmp_path: Path) -> None:
    class Unserialisable:
        def __reduce__(self):
            raise TypeError("cannot pickle this")

    target = tmp_path / "model.pt"
    with pytest.raises(TypeError):
        save_torch(target, {"x": Unserialisable()})
    assert _listing(tmp_path) == []


@dataclasses.dataclass
class _Cfg:
    lr: float = 0.1
    out: Path = Path("runs/x")
    sizes: tuple[int, ...] = (1, 2)


def test_write_yaml_keeps_order_and_converts(tmp_path: Path) -> None:
    import numpy as np

    path = write_yaml(
        tmp_path / "c.yaml", {"z": 1, "a": _Cfg(), "n": np.float32(0.5), "arr": np.arange(3)}
    )
    text = path.read_text()
    assert text.index("z:") < text.index("a:")
    assert yaml.safe_load(text) == {
        "z": 1,
        "a": {"lr": 0.1, "out": "runs/x", "sizes": [1, 2]},
        "n": 0.5,
        "arr": [0, 1, 2],
    }


def test_to_plain_rejects_nothing() -> None:
    class Odd:
        def __str__(self) -> str:
            return "odd"

    assert to_plain({("a", 1): Odd(), 2: {3}}) == {"['a', 1]": "odd", 2: [3]}


def test_write_csv(tmp_path: Path) -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    path = write_csv(tmp_path / "t.csv", df)
    assert path.read_text().splitlines() == ["a,b", "1,x", "2,y"]
    pd.testing.assert_frame_equal(pd.read_csv(path), df, check_dtype=False)


def test_save_torch_round_trip(tmp_path: Path) -> None:
    import torch

    state = {"w": torch.arange(4.0)}
    path = save_torch(tmp_path / "m.pt", state)
    assert torch.equal(torch.load(path, weights_only=True)["w"], state["w"])


def test_save_figure_writes_png(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    path = save_figure(tmp_path / "f.png", fig, dpi=50)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.fignum_exists(fig.number)  # not closed by us
    plt.close(fig)


def test_refuse_overwrite(tmp_path: Path) -> None:
    inp = tmp_path / "in.nii.gz"
    inp.write_bytes(b"data")
    other = tmp_path / "other.nii.gz"

    refuse_overwrite(tmp_path / "out.nii.gz", [inp, other])  # fine
    refuse_overwrite(other, inp)  # fine, single input

    with pytest.raises(InputFileError, match="inputs are never overwritten") as info:
        refuse_overwrite(inp, [other, inp])
    assert info.value.path == inp

    spelled = tmp_path / "sub" / ".." / "in.nii.gz"
    with pytest.raises(InputFileError):
        refuse_overwrite(spelled, [inp])

    link = tmp_path / "link.nii.gz"
    link.symlink_to(inp)
    with pytest.raises(InputFileError):
        refuse_overwrite(link, str(inp))

    hard = tmp_path / "hard.nii.gz"
    os.link(inp, hard)
    with pytest.raises(InputFileError):
        refuse_overwrite(hard, [inp])

    # an output that does not exist yet is compared by resolved name
    with pytest.raises(InputFileError):
        refuse_overwrite(tmp_path / "new.txt", [tmp_path / "." / "new.txt"])

"""Tests of medcl.io.runs: run folders record config, seed, versions, model, metrics, report."""

from __future__ import annotations

import dataclasses
import platform
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from medcl.io import runs
from medcl.io.errors import ConfigError, RunFolderError
from medcl.io.runs import RunFolder, library_versions, to_markdown_table

EXPECTED_KEYS = {
    "python",
    "medcl",
    "torch",
    "numpy",
    "monai",
    "mne",
    "lightning",
    "segment_anything",
    "braindecode",
    "moabb",
    "sklearn",
}


@dataclasses.dataclass
class _Config:
    lr: float = 3e-4
    epochs: int = 2
    data: Path = Path("data/x")


def test_library_versions() -> None:
    versions = library_versions()
    assert set(versions) == EXPECTED_KEYS
    assert versions["python"] == platform.python_version()
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert all(isinstance(v, str) and v for v in versions.values())


def test_library_versions_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runs._DISTRIBUTIONS, "monai", "no-such-distribution-xyz")
    assert library_versions()["monai"] == "not installed"


def test_create_and_layout(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "a" / "run1")
    assert run.root.is_dir()
    assert run.config_path == run.root / "config.yaml"
    assert run.metrics_path.name == "metrics.csv"
    assert run.model_path.name == "model.pt"
    assert run.report_path.name == "report.md"
    assert run.checkpoint_dir == run.root / "checkpoints"


def test_create_reuses_existing_run(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.write_config({"a": 1}, seed=3)
    again = RunFolder.create(tmp_path / "r")
    assert again.read_config()["seed"] == 3


def test_create_overwrite_starts_afresh(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.write_config({"a": 1})
    run.write_report("# hi")
    run.checkpoint_dir.mkdir()
    (run.checkpoint_dir / "last.ckpt").write_bytes(b"x")
    (run.root / "keep.txt").write_text("user file")
    RunFolder.create(tmp_path / "r", overwrite=True)
    assert sorted(p.name for p in run.root.iterdir()) == ["keep.txt"]


def test_create_on_a_file_fails(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    with pytest.raises(RunFolderError, match="is a file") as info:
        RunFolder.create(file)
    assert str(file) in str(info.value)


def test_write_config_round_trip(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    path = run.write_config(_Config(), seed=7, extra={"command": "medcl demo"})
    assert path == run.config_path
    back = run.read_config()
    assert list(back)[:4] == ["config", "seed", "versions", "created"]
    assert back["config"] == {"lr": 3e-4, "epochs": 2, "data": "data/x"}
    assert back["seed"] == 7
    assert back["versions"] == library_versions()
    assert back["command"] == "medcl demo"
    assert datetime.fromisoformat(back["created"]).tzinfo is not None
    assert yaml.safe_load(path.read_text()) == back


def test_write_config_dict_and_no_seed(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.write_config({"b": [1, 2]})
    back = run.read_config()
    assert back["config"] == {"b": [1, 2]}
    assert back["seed"] is None


def test_write_config_refuses_reserved_extra(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    with pytest.raises(ConfigError, match="seed"):
        run.write_config({}, seed=1, extra={"seed": 2})
    assert not run.config_path.exists()


def test_read_config_missing_or_bad(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    with pytest.raises(RunFolderError, match="config.yaml is missing"):
        run.read_config()
    run.config_path.write_text("- just\n- a list\n")
    with pytest.raises(RunFolderError, match="not a mapping"):
        run.read_config()
    run.config_path.write_text("a: [unclosed\n")
    with pytest.raises(RunFolderError, match="cannot read"):
        run.read_config()


def test_model_round_trip(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    model = torch.nn.Linear(3, 2)
    run.save_model(model.state_dict())
    state = run.load_model()
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(state)
    for a, b in zip(model.parameters(), fresh.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [p.name for p in run.root.iterdir()] == ["model.pt"]


def test_load_model_missing(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    with pytest.raises(RunFolderError) as info:
        run.load_model()
    message = str(info.value)
    assert str(run.model_path) in message
    assert "missing" in message and "Fix:" in message


def test_load_model_garbage(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.model_path.write_bytes(b"this is not a torch file at all")
    with pytest.raises(RunFolderError) as info:
        run.load_model()
    assert str(run.model_path) in str(info.value)
    assert "cannot be loaded" in str(info.value)


def test_load_model_refuses_arbitrary_pickles(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    torch.save({"obj": _Config()}, run.model_path)  # not weights-only
    with pytest.raises(RunFolderError, match="weights-only"):
        run.load_model()


def test_metrics_from_rows_and_frame(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    run.write_metrics([{"epoch": 0, "loss": 1.5}, {"epoch": 1, "loss": 1.25}])
    assert run.metrics_path.read_text().splitlines() == ["epoch,loss", "0,1.5", "1,1.25"]
    run.write_metrics(pd.DataFrame({"epoch": [0], "acc": [0.5]}))
    assert list(run.read_metrics().columns) == ["epoch", "acc"]


def test_read_metrics_missing(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="metrics.csv") as info:
        RunFolder.create(tmp_path / "r").read_metrics()
    assert "training log" in str(info.value)  # metrics.csv always means the per-epoch log


def test_write_table_returns_markdown(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    df = pd.DataFrame({"method": ["knn", "linear"], "accuracy": [0.91234, 0.9]})
    md = run.write_table("probe", df)
    assert md == (
        "| method | accuracy |\n"
        "| ------ | -------: |\n"
        "| knn    |    0.912 |\n"
        "| linear |    0.900 |\n"
    )
    assert (run.root / "probe.csv").read_text().splitlines() == [
        "method,accuracy",
        "knn,0.91234",
        "linear,0.9",
    ]
    run.write_table("probe.csv", df)  # suffix given explicitly is not doubled
    assert sorted(p.name for p in run.root.iterdir()) == ["probe.csv"]


def test_write_table_rejects_paths(tmp_path: Path) -> None:
    run = RunFolder.create(tmp_path / "r")
    with pytest.raises(ConfigError):
        run.write_table("../escape", pd.DataFrame({"a": [1]}))


def test_markdown_table_details() -> None:
    df = pd.DataFrame(
        {"name": ["a|b", None], "n": [1, 2], "x": [float("nan"), 2.0], "ok": [True, False]},
        index=pd.Index(["s1", "s2"], name="subject"),
    )
    md = to_markdown_table(df, floatfmt=".1f")
    lines = md.splitlines()
    assert lines[0] == "| subject | name |   n |   x | ok    |"
    assert lines[1] == "| ------- | ---- | --: | --: | ----- |"
    assert lines[2] == "| s1      | a\\|b |   1 |     | True  |"
    assert lines[3] == "| s2      |      |   2 | 2.0 | False |"


def test_markdown_table_empty() -> None:
    empty = pd.DataFrame({"a": pd.Series([], dtype="float64"), "b": pd.Series([], dtype=str)})
    assert to_markdown_table(empty) == "|   a | b   |\n| --: | --- |\n"


def test_report_and_figure(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunFolder.create(tmp_path / "r")
    assert run.write_report("# Report").read_text() == "# Report\n"
    fig = plt.figure(figsize=(1, 1))
    path = run.save_figure("curve", fig)
    plt.close(fig)
    assert path == run.root / "curve.png"
    assert path.read_bytes()[:4] == b"\x89PNG"

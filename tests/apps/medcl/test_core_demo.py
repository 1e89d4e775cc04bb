"""The core demo end to end: files in the run folder, and training beats random init."""

import re

import pandas as pd
from typer.testing import CliRunner

from medcl.cli import app
from medcl.core_demo import CoreDemoConfig, run_core_demo
from medcl.demo import available_steps


def test_trained_encoder_beats_random_init(tmp_path):
    cfg = CoreDemoConfig(epochs=15, few_label_draws=5)
    section = run_core_demo(tmp_path / "core", config=cfg, progress=False)
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "probes.csv", "loss.png"):
        assert (tmp_path / "core" / name).exists(), name
    probes = pd.read_csv(tmp_path / "core" / "probes.csv").set_index("features")
    init, trained = probes.loc["CNN, random init"], probes.loc["CNN, SimCLR 15 epochs"]
    assert trained["knn"] > init["knn"]
    assert trained["1-shot 1-NN"] > init["1-shot 1-NN"] + 0.05
    metrics = pd.read_csv(tmp_path / "core" / "metrics.csv")
    assert len(metrics) == 15 and metrics["loss"].iloc[-1] < metrics["loss"].iloc[0]
    assert "SimCLR" in section


def test_demo_command_writes_report(tmp_path):
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "demo"), "--epochs", "1"])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "demo" / "report.md").read_text()
    assert "## core: SimCLR on digits" in report and "## sepclr: digits on textures" in report
    assert re.search(r"\| core +\| +[0-9.]+ \|", report)
    # pictures are linked from the tour's folder into each step's folder
    assert "](core/loss.png)" in report and "](sepclr/tsne_sepclr.png)" in report
    for link in re.findall(r"\]\(([^)]+\.png)\)", report):
        assert (tmp_path / "demo" / link).exists(), link
    assert (tmp_path / "demo" / "core" / "model.pt").exists()
    # metrics.csv is always a per-epoch training log; the tour's and the benchmark's own tables
    # have their own names
    timing = pd.read_csv(tmp_path / "demo" / "timing.csv")
    assert list(timing["step"]) == list(available_steps())
    assert not (tmp_path / "demo" / "metrics.csv").exists()
    sepclr = tmp_path / "demo" / "sepclr"
    comparison = pd.read_csv(sepclr / "comparison.csv")
    assert list(comparison["method"]) == ["sepclr", "simclr", "cvae"]
    assert not (sepclr / "metrics.csv").exists()
    for method in ("sepclr", "simclr", "cvae"):
        assert list(pd.read_csv(sepclr / method / "metrics.csv")["epoch"]) == [1], method
    assert len(pd.read_csv(tmp_path / "demo" / "core" / "metrics.csv")) == 1

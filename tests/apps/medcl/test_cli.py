"""The front door: help stays light, app groups come from entry points, errors exit cleanly."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from medcl.cli import app

runner = CliRunner()
APPS = ["dbsam", "pirads", "mvcnet", "sepclr"]


def test_help_lists_every_group_without_heavy_imports():
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from medcl.cli import app\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "for app_name in ['dbsam', 'pirads', 'mvcnet', 'sepclr']:\n"
        "    r2 = CliRunner().invoke(app, [app_name, '--help'])\n"
        "    assert r2.exit_code == 0, r2.output\n"
        "heavy = [m for m in ('torch', 'monai', 'mne', 'braindecode', 'lightning', 'pandas')\n"
        "         if m in sys.modules]\n"
        "print(r.output)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    for name in APPS + ["info", "demo", "cards"]:
        assert name in out
    assert "HEAVY []" in out


@pytest.mark.parametrize("name", APPS)
def test_app_group_about(name):
    result = runner.invoke(app, [name, "about"])
    assert result.exit_code == 0, result.output
    assert "arXiv" in result.output


def test_console_script_entry_point():
    out = subprocess.run([sys.executable, "-m", "medcl", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "mvcnet" in out


def test_info_reports_versions_and_device():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "torch" in result.output and "cuda available" in result.output


def test_demo_lists_steps_and_rejects_unknown():
    result = runner.invoke(app, ["demo", "--list"])
    assert result.exit_code == 0 and result.output.startswith("core:")
    result = runner.invoke(app, ["demo", "--only", "nope"])
    assert result.exit_code == 2
    assert "unknown step" in result.output


def test_medcl_error_is_one_line_and_exit_2(tmp_path):
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "medcl", "demo", "--out", str(not_a_folder)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(not_a_folder) in proc.stderr

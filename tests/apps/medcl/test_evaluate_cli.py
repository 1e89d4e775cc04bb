"""The front door's ``medcl evaluate`` / ``medcl report``: errors as one line, exit codes,
failed cases named, no app imported by the front door itself."""

from __future__ import annotations

import subprocess
import sys

from medcl.io.evaluate import write_phantom_cases

SPEC = "medcl.io.evaluate:THRESHOLD"


def test_front_door_imports_no_app():
    code = ("import sys, medcl.cli, medcl.evaluate, medcl.io.evaluate, medcl.io.report; "
            "bad = [m for m in sys.modules if m.split('.')[:2] in (['medcl', 'dbsam'], "
            "['medcl', 'pirads'], ['medcl', 'mvcnet'], ['medcl', 'sepclr'])]; "
            "print(bad); sys.exit(bool(bad) or 'torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_bad_card_app_and_options(tmp_path, medcl_cli):
    code, _, err = medcl_cli(["evaluate", "--card", "nope", "--app", "dbsam", "--out", tmp_path])
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1
    code, _, err = medcl_cli(["evaluate", "--card", "msd_task09_spleen", "--app", "nope",
                              "--out", tmp_path / "x"])
    assert code == 2 and "no evaluator for app 'nope'" in err and "dbsam" in err
    code, _, err = medcl_cli(["evaluate", "--card", "msd_task09_spleen", "--app", "dbsam",
                              "--out", tmp_path / "x"])
    assert code == 2 and "needs a trained model" in err
    code, _, err = medcl_cli(["evaluate", "--card", "msd_task09_spleen", "--app", SPEC,
                              "--option", "oops", "--out", tmp_path / "x"])
    assert code == 2 and "KEY=VALUE" in err
    assert not (tmp_path / "x").exists()


def test_failed_cases_exit_2_and_a_rerun_completes(tmp_path, medcl_cli):
    root = write_phantom_cases(tmp_path / "data", 3, size=12)
    good = (root / "imagesTr" / "case_001.nii.gz").read_bytes()
    (root / "imagesTr" / "case_001.nii.gz").write_bytes(good[:40])  # truncated
    args = ["evaluate", "--card", "msd_task09_spleen", "--app", SPEC, "--root", root,
            "--out", tmp_path / "ev", "--progress", "quiet"]
    code, out, err = medcl_cli(args)
    assert code == 2 and "1 case(s) failed (case_id=case_001" in err
    assert "report.html" in out  # the page is written, the failed case flagged in it
    assert "class='failed'" in (tmp_path / "ev" / "report.html").read_text()
    (root / "imagesTr" / "case_001.nii.gz").write_bytes(good)
    code, _, err = medcl_cli(args)
    assert code == 0, err

"""Card-driven evaluation engine: failed cases, resume, ranks, workers killed mid-run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medcl.io import get_card
from medcl.io.errors import ConfigError, InputFileError
from medcl.io.evaluate import run_evaluation, write_phantom_cases
from medcl.io.units import Shard

SPEC = "medcl.io.evaluate:THRESHOLD"
CARD = get_card("msd_task09_spleen")


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory) -> Path:
    return write_phantom_cases(tmp_path_factory.mktemp("ph"), 8, size=16)


def _run(root, out, **kw):
    return run_evaluation(spec=SPEC, card=CARD, root=root, out=out, progress="quiet",
                          report=False, **kw)


def test_corrupt_case_is_listed_and_the_rest_finish_then_resume(phantoms, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(phantoms, root)
    (root / "imagesTr" / "case_002.nii.gz").write_bytes(b"not a nifti")
    res = _run(root, tmp_path / "ev")
    assert res["failed"] == ["case_002"]
    table = res["table"]
    assert list(table.case_id) == [f"case_{i:03d}" for i in range(8)]
    assert (table.status == "ok").sum() == 7
    assert "cannot be read as NIfTI" in table.set_index("case_id").loc["case_002", "error"]
    assert (table.loc[table.status == "ok", "dice"] > 0.3).all()
    assert (tmp_path / "ev" / "summary.md").is_file()
    assert len(list((tmp_path / "ev" / "cases").glob("*.npz"))) == 7
    # the case repaired, a rerun scores only it
    shutil.copy(phantoms / "imagesTr" / "case_002.nii.gz", root / "imagesTr")
    again = _run(root, tmp_path / "ev")
    assert again["ran"] == 1 and again["skipped"] == 7 and again["failed"] == []
    # another model/option on the same folder is refused before anything is written
    with pytest.raises(ConfigError, match="other inputs"):
        _run(root, tmp_path / "ev", options={"threshold": "0.9"})


def test_ranks_merge_to_the_single_run_table(phantoms, tmp_path):
    whole = _run(phantoms, tmp_path / "one")
    for rank in (1, 0):  # either order: the merge is deterministic
        _run(phantoms, tmp_path / "two", shard=Shard(rank, 2))
    assert (tmp_path / "two" / "cases.csv").read_text() == \
        (tmp_path / "one" / "cases.csv").read_text()
    assert whole["ran"] == 8


def test_split_limit_and_card_root_errors(phantoms, tmp_path):
    res = _run(phantoms, tmp_path / "test", split="test")
    assert list(res["table"].case_id) == ["case_004"]  # every 5th case is held out
    assert len(_run(phantoms, tmp_path / "lim", limit=3)["table"]) == 3
    with pytest.raises(InputFileError, match=r"no msd_task09_spleen data here: imagesTr/.*"
                       r"Fix: get it as the card says \(Download Task09_Spleen.tar"):
        _run(tmp_path, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    with pytest.raises(ConfigError, match="no evaluator for app 'nope'"):
        run_evaluation(spec="nope", card=CARD, root=phantoms, out=tmp_path / "x")


def test_two_workers_killed_then_resumed_give_the_uninterrupted_table(phantoms, tmp_path):
    reference = _run(phantoms, tmp_path / "ref", workers=2)
    assert reference["ran"] == 8
    out = tmp_path / "killed"
    env = {**os.environ, "MEDCL_EVAL_SLEEP": "0.6", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "medcl", "evaluate", "--card", CARD.id, "--app", SPEC,
           "--root", str(phantoms), "--out", str(out), "--workers", "2", "--progress", "lines"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    csv = out / "cases.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if csv.is_file() and len(csv.read_text().splitlines()) >= 3:  # header + 2 cases
            break
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-case
    proc.wait()
    done = len(csv.read_text().splitlines()) - 1
    assert 2 <= done < 8, proc.stderr.read().decode()[-2000:]
    resumed = _run(phantoms, out, workers=2)
    assert resumed["skipped"] == done and resumed["ran"] == 8 - done
    assert csv.read_text() == (tmp_path / "ref" / "cases.csv").read_text()
    assert not list(out.glob(".*.lock"))

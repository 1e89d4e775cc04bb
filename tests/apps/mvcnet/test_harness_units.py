"""``medcl mvcnet benchmark``/``train`` as units (issue 22): rows written as each unit ends,
resume after ``kill -9``, progress lines in a log file, failed units retried, one writer."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

TINY = ["--epochs", "3", "--seeds", "1", "--trans-hidden", "16", "--batch-size", "16",
        "--resample", "125"]
TWO_UNITS = ["--models", "csp_lda,mvcnet_cnn", *TINY]  # one recording: 1 split x 2 models


@pytest.fixture(scope="module")
def killed(recordings, tmp_path_factory):
    """A 2-unit benchmark in a subprocess, stderr to a file, killed (SIGKILL) as soon as the
    file shows its first unit ended. Returns the run folder, the log as it stood then, and the
    command's arguments."""
    root = tmp_path_factory.mktemp("killed")
    run, log = root / "run", root / "bench.log"
    args = ["mvcnet", "benchmark", "--data", recordings[0], *TWO_UNITS, "--out", run]
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "medcl", *map(str, args)],
                                stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 180
        # the row and results.md are written just after the "ok" line (medcl.io.units prints
        # the line first)
        while "trained=csp_lda: ok" not in log.read_text() or not (run / "results.md").exists():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the first unit did not end in time"
            time.sleep(0.02)
        seen = log.read_text()
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)  # reaped: its lock files are stale now
    return run, seen, args


def test_log_file_shows_progress_before_the_first_unit_ends(killed):
    _, seen, _ = killed
    started = seen.index("[unit 1/2] protocol=co split=subject sub-01 seed=1 trained=csp_lda: "
                         "started")
    assert started < seen.index("trained=csp_lda: ok in")
    assert "2 units to run" in seen


def test_killed_run_resumes_with_the_missing_unit_only(killed, tmp_path, medcl_cli):
    run, _, args = killed
    partial = pd.read_csv(run / "splits.csv")
    assert list(partial.trained) == ["csp_lda"] and list(partial.status) == ["ok"]
    assert "1 of 2 units done" in (run / "results.md").read_text()  # the folder shows a table
    assert not (run / "model.pt").exists()

    code, _, err = medcl_cli(args)
    assert code == 0, err
    assert "1 of 2 units already done in splits.csv, 1 to run" in err
    assert "[unit 1/2]" not in err and "trained=mvcnet_cnn: started" in err
    # long training prints one plain line per epoch when stderr is not a terminal
    epochs = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert epochs[0].startswith("epoch 1/3 ") and "ETA" in epochs[-1]

    fresh = tmp_path / "fresh"
    code, _, err = medcl_cli([*args[:-1], fresh])
    assert code == 0, err
    for name in ("splits.csv", "results.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(run / name), pd.read_csv(fresh / name))
    assert (run / "results.md").read_text() == (fresh / "results.md").read_text()
    assert "units done" not in (run / "results.md").read_text()

    # a run folder of other inputs is refused, nothing rewritten
    before = (run / "config.yaml").read_text()
    code, _, err = medcl_cli([*args[:-1], run, "--seeds", "2"])
    assert code == 2 and "other inputs" in err and "seeds" in err
    assert (run / "config.yaml").read_text() == before


def test_failed_unit_is_recorded_and_retried_alone(recordings, tmp_path, medcl_cli,
                                                   monkeypatch):
    import medcl.mvcnet.baselines as baselines

    fit_predict, calls = baselines.fit_predict, []

    def flaky(name, *a, **k):
        calls.append(name)
        if len(calls) == 1:
            raise RuntimeError("simulated out of memory")
        return fit_predict(name, *a, **k)

    monkeypatch.setattr(baselines, "fit_predict", flaky)
    run = tmp_path / "run"
    args = ["mvcnet", "train", "--data", recordings[0], "--data", recordings[1],
            "--models", "csp_lda", *TINY, "--out", run]
    code, out, err = medcl_cli([*args, "--quiet"])
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "1 of 2 units failed" in lines[0]  # --quiet: no progress
    assert "subject sub-01 1 csp_lda" in lines[0] and "rerun" in lines[0]
    table = pd.read_csv(run / "splits.csv")
    assert list(table.status) == ["failed", "ok"]
    assert "simulated out of memory" in table.error[0]
    assert "Failed units" in (run / "results.md").read_text()
    assert (run / "report.md").exists() and (run / "model.pt").exists()

    monkeypatch.setattr(baselines, "fit_predict", fit_predict)
    calls.clear()
    code, _, err = medcl_cli([*args, "--workers", "2"])  # workers: csp_lda only
    assert code == 0, err
    assert "1 of 2 units already done" in err
    assert "[unit 1/2]" in err and "[unit 2/2]" not in err
    assert "final model" not in err  # model.pt of the same inputs is kept
    table = pd.read_csv(run / "splits.csv")
    assert list(table.status) == ["ok", "ok"] and table.error.isna().all()
    assert "Failed" not in (run / "results.md").read_text()


def test_second_writer_is_refused(recordings, tmp_path, medcl_cli):
    from medcl.io.units import RunLock

    run = tmp_path / "run"
    args = ["mvcnet", "benchmark", "--data", recordings[0], "--models", "csp_lda", *TINY,
            "--out", run]
    with RunLock(run / ".run.rank0of1.lock"):  # the command's own lock: nothing is written
        code, _, err = medcl_cli(args)
    assert code == 2 and "another medcl process" in err and "--out" in err
    assert not (run / "config.yaml").exists() and not (run / "splits.csv").exists()
    with RunLock(run / ".splits.csv.rank0of1.lock"):  # the units table's lock
        code, _, err = medcl_cli(args)
    assert code == 2 and "another medcl process" in err
    assert not (run / "splits.csv").exists()
    # --workers only runs scikit-learn baselines
    code, _, err = medcl_cli([*args[:-2], "--models", "csp_lda,eegnet", "--workers", "2",
                              "--out", tmp_path / "w"])
    assert code == 2 and "--workers" in err and "eegnet" in err
    assert not (tmp_path / "w").exists()


def test_shards_split_the_units_and_the_last_writes_the_report(recordings, tmp_path,
                                                              medcl_cli):
    run = tmp_path / "run"
    args = ["mvcnet", "benchmark", "--data", recordings[0], "--data", recordings[1],
            "--models", "csp_lda", *TINY, "--out", run]
    code, out, err = medcl_cli([*args, "--shard", "1/2"])
    assert code == 0, err
    assert "left to other shards" in err and "report:" not in out
    assert list(pd.read_csv(run / "splits.csv").split) == ["subject sub-02"]
    code, out, err = medcl_cli([*args, "--shard", "0/2"])
    assert code == 0, err
    assert "report:" in out and (run / "model.pt").exists()
    assert list(pd.read_csv(run / "splits.csv").split) == ["subject sub-01", "subject sub-02"]
    code, _, err = medcl_cli([*args, "--shard", "2/2"])
    assert code == 2 and "--shard" in err

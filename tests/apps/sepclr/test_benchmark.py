"""``medcl sepclr benchmark`` as a long run: one unit per method, rows written as each ends,
progress lines in a log file, resume after ``kill -9``, failed methods retried, shards."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

TINY = ["--n", "40", "--epochs", "2", "--size", "32", "--batch-size", "32"]
TIMING = "s/epoch"  # a wall time: the one column a resumed run may not reproduce


def _benchmark(out, methods, *extra):
    return ["sepclr", "benchmark", "--out", out, "--methods", methods, *TINY, *extra]


def _wait_for(predicate, proc, timeout, what):
    """Poll ``predicate()`` until true; fail (after killing ``proc``) on timeout or exit."""
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            proc.wait()
            pytest.fail(f"no {what} within {timeout} s (exit {proc.returncode})")
        time.sleep(0.02)


def _comparable(folder):
    table = pd.read_csv(folder / "comparison.csv")
    assert TIMING in table.columns
    return table.drop(columns=TIMING)


@pytest.mark.slow
def test_killed_after_first_method_resumes_with_the_same_table(tmp_path, medcl_cli):
    """Output to a file shows a line before the first method ends; after SIGKILL following
    the first method, a rerun computes only the second and ends with an uninterrupted run's
    comparison table (and probes)."""
    out, log = tmp_path / "run", tmp_path / "bench.log"
    cmd = [sys.executable, "-m", "medcl", *map(str, _benchmark(out, "simclr,sepclr"))]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        _wait_for(lambda: "method=simclr: started" in log.read_text(), proc, 120,
                  "'started' line")
        assert not (out / "units.csv").exists()  # the line came before the first method ended
        _wait_for(lambda: "method=simclr: ok in" in log.read_text(), proc, 240, "'ok' line")
        proc.send_signal(signal.SIGKILL)  # a method the log calls ended is on disk
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    lines = log.read_text().splitlines()
    assert lines[0] == "2 methods to run"
    units_lines = [x for x in lines if x.startswith("[method ")]
    assert units_lines[0].startswith("[method 1/2] method=simclr: started (elapsed")
    assert units_lines[1].startswith("[method 1/2] method=simclr: ok in")
    assert "ETA" in units_lines[1]
    units = pd.read_csv(out / "units.csv")
    assert list(units.method) == ["simclr"] and list(units.status) == ["ok"]
    report = (out / "report.md").read_text()
    assert "simclr" in report  # RUN/ shows what is done
    # both probe tables (the authors' and ours) name the method on each row
    assert sum(line.startswith("| simclr ") for line in report.splitlines()) == 2
    assert "not run yet: sepclr" in (out / "report.md").read_text()

    code, _, err = medcl_cli(_benchmark(out, "simclr,sepclr"))
    assert code == 0, err
    assert "1 of 2 methods already done in units.csv, 1 to run" in err
    assert "method=simclr" not in err and "[method 2/2] method=sepclr: ok" in err

    whole = tmp_path / "whole"
    code, _, err = medcl_cli(_benchmark(whole, "simclr,sepclr"))
    assert code == 0, err
    pd.testing.assert_frame_equal(_comparable(out), _comparable(whole))
    assert list(_comparable(out).method) == ["simclr", "sepclr"]
    for method in ("simclr", "sepclr"):
        pd.testing.assert_frame_equal(pd.read_csv(out / f"probes_{method}.csv"),
                                      pd.read_csv(whole / f"probes_{method}.csv"))
        assert (out / method / "model.pt").exists()
    assert (out / "tsne_simclr.png").exists()

    # every method done: nothing runs, the table stays
    code, _, err = medcl_cli(_benchmark(out, "simclr,sepclr"))
    assert code == 0 and "2 of 2 methods already done" in err and "started" not in err, err
    pd.testing.assert_frame_equal(_comparable(out), _comparable(whole))


def test_failed_method_is_recorded_others_finish_and_rerun_retries(tmp_path, medcl_cli,
                                                                  monkeypatch):
    from medcl.sepclr import harness

    real = harness.run_method

    def flaky(cfg, *args, **kwargs):
        if cfg.method == "cvae":
            raise RuntimeError("out of memory (simulated)")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(harness, "run_method", flaky)
    out = tmp_path / "run"
    code, _, err = medcl_cli(_benchmark(out, "cvae,simclr", "--quiet"))
    assert code == 2, err
    assert err.count("\n") == 1 and "cvae" in err and "out of memory" in err, err
    units = pd.read_csv(out / "units.csv").set_index("method")
    assert units.status.to_dict() == {"cvae": "failed", "simclr": "ok"}
    assert "out of memory" in units.error["cvae"]
    assert list(pd.read_csv(out / "comparison.csv").method) == ["simclr"]
    assert "cvae failed: RuntimeError: out of memory" in (out / "report.md").read_text()

    monkeypatch.setattr(harness, "run_method", real)
    code, _, err = medcl_cli(_benchmark(out, "cvae,simclr"))
    assert code == 0, err
    assert "1 of 2 methods already done" in err and "method=simclr" not in err
    assert "[method 1/2] method=cvae: ok" in err
    assert list(pd.read_csv(out / "comparison.csv").method) == ["cvae", "simclr"]
    assert "failed" not in (out / "report.md").read_text()
    assert (out / "tsne_cvae.png").exists()


def test_shards_split_the_methods_and_merge(tmp_path, medcl_cli):
    out = tmp_path / "run"
    code, _, err = medcl_cli(_benchmark(out, "simclr,cvae", "--epochs", "1", "--shard", "1/2"))
    assert code == 0, err
    assert "1 method to run (shard 1/2)" in err and "method=simclr" not in err
    assert list(pd.read_csv(out / "comparison.csv").method) == ["cvae"]
    code, _, err = medcl_cli(_benchmark(out, "simclr,cvae", "--epochs", "1", "--shard", "0/2"))
    assert code == 0, err
    assert list(pd.read_csv(out / "comparison.csv").method) == ["simclr", "cvae"]
    assert (out / "units.rank0of2.csv").exists() and (out / "units.rank1of2.csv").exists()


def test_bad_shard_and_other_settings_refused(tmp_path, medcl_cli):
    code, _, err = medcl_cli(_benchmark(tmp_path / "b", "simclr", "--shard", "2/2"))
    assert code == 2 and "shard" in err and not (tmp_path / "b").exists(), err
    code, _, err = medcl_cli(_benchmark(tmp_path / "b", "simclr", "--shard", "x"))
    assert code == 2 and "--shard" in err, err
    code, _, err = medcl_cli(_benchmark(tmp_path / "b", "simclr,simclr"))
    assert code == 2 and "--methods" in err, err


def test_second_writer_and_other_settings_are_refused(tmp_path, medcl_cli):
    out = tmp_path / "run"
    code, _, err = medcl_cli(_benchmark(out, "simclr", "--epochs", "1", "--quiet"))
    assert code == 0, err
    config = (out / "config.yaml").read_text()
    code, _, err = medcl_cli(_benchmark(out, "simclr", "--epochs", "2"))
    assert code == 2 and "epochs was 1, now 2" in err, err
    assert (out / "config.yaml").read_text() == config  # refused before writing

    # a live process holds the folder's lock: a second writer is refused with one line
    import json
    import socket

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (out / ".units.csv.rank0of1.lock").write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": time.time()}))
        code, _, err = medcl_cli(_benchmark(out, "simclr,cvae", "--epochs", "1"))
        assert code == 2 and "another medcl process" in err and str(holder.pid) in err, err
    finally:
        holder.kill()
        holder.wait()
    # its process gone, the lock is stale and taken over
    code, _, err = medcl_cli(_benchmark(out, "simclr,cvae", "--epochs", "1", "--quiet"))
    assert code == 0, err
    assert list(pd.read_csv(out / "comparison.csv").method) == ["simclr", "cvae"]

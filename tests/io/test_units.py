"""Tests of medcl.io.units: rows as units finish, resume after kill -9, retries, progress in a
log file, one writer, shards and workers."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from medcl.io.errors import ConfigError
from medcl.io.units import RunLock, Shard, parse_shard, run_units

UNITS = [({"model": m, "seed": s}, 10 * i + s) for i, m in enumerate(["a", "b"]) for s in (0, 1)]


def square(key, item):
    return [{"value": item * item, "half": item / 2}]


def _run(path, work=square, units=UNITS, **kw):
    kw.setdefault("progress", "quiet")
    return run_units(units, work, path, columns=["value", "half"], shard=kw.pop("shard", Shard()),
                     **kw)


def test_rows_written_as_each_unit_ends_and_resume_skips_them(tmp_path):
    seen_tables = []
    res = _run(tmp_path / "t.csv", on_table=lambda t: seen_tables.append(len(t)))
    assert seen_tables == [1, 2, 3, 4]  # the table on disk grows unit by unit
    assert res.ran == 4 and res.skipped == 0 and not res.any_failed
    assert list(res.table.columns) == ["model", "seed", "value", "half", "status", "error"]
    assert res.table.value.tolist() == [0, 1, 100, 121]
    calls = []
    again = _run(tmp_path / "t.csv", work=lambda k, i: calls.append(k) or square(k, i))
    assert calls == [] and again.ran == 0 and again.skipped == 4
    pd.testing.assert_frame_equal(again.table, res.table)


def test_failed_unit_recorded_others_finish_and_rerun_retries_only_it(tmp_path):
    def flaky(key, item):
        if key["model"] == "b" and key["seed"] == 0:
            raise MemoryError("out of memory")
        return square(key, item)

    res = _run(tmp_path / "t.csv", work=flaky)
    assert res.failed == 1 and res.any_failed and res.ran == 4
    bad = res.table[res.table.status == "failed"]
    assert bad[["model", "seed"]].values.tolist() == [["b", "0"]]
    assert bad.error.item() == "MemoryError: out of memory"
    calls = []
    again = _run(tmp_path / "t.csv", work=lambda k, i: calls.append(dict(k)) or square(k, i))
    assert calls == [{"model": "b", "seed": 0}] and not again.any_failed
    pd.testing.assert_frame_equal(again.table, _run(tmp_path / "fresh.csv").table)
    assert (tmp_path / "t.csv").read_text() == (tmp_path / "fresh.csv").read_text()


def test_signature_of_other_inputs_is_refused(tmp_path):
    _run(tmp_path / "t.csv", signature={"lr": 0.1})
    with pytest.raises(ConfigError, match="lr was 0.1, now 0.2"):
        _run(tmp_path / "t.csv", signature={"lr": 0.2})
    nested = {"config": {"lr": 0.1, "seeds": [1, 2]}, "data": {"files": ["a.edf"] * 30}}
    _run(tmp_path / "n.csv", signature=nested)
    changed = {"config": {"lr": 0.2, "seeds": [1, 2]}, "data": {"files": ["b.edf"] * 30}}
    with pytest.raises(ConfigError) as info:
        _run(tmp_path / "n.csv", signature=changed)
    diff = str(info.value).split("other inputs (", 1)[1].split("). Fix", 1)[0]
    assert diff.startswith("config.lr was 0.1, now 0.2; data.files was ['a.edf'")
    assert "seeds" not in diff and len(diff) < 200  # only what changed, long values cut


_SCRIPT = """
import sys, time
from pathlib import Path
from medcl.io.units import Shard, run_units

def work(key, item):
    if key["n"] == 1:           # the second unit hangs until the test kills the process
        time.sleep(120)
    return [{"value": item * 3}]

run_units([({"n": 0}, 5), ({"n": 1}, 7)], work, Path(sys.argv[1]), columns=["value"],
          progress="lines", shard=Shard())
"""


def _wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_killed_after_first_unit_then_rerun_computes_only_the_rest(tmp_path):
    script = tmp_path / "bench.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    log = tmp_path / "bench.log"
    table = tmp_path / "run" / "t.csv"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, str(script), str(table)], stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            # a log file shows the run's progress before the first unit is even over
            assert _wait_for(lambda: "[unit 1/2] n=0: started" in log.read_text())
            assert _wait_for(lambda: "[unit 2/2] n=1: started" in log.read_text())
            assert table.is_file() and pd.read_csv(table).value.tolist() == [15]
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    lock = table.with_name(".t.csv.rank0of1.lock")
    assert lock.is_file()  # left behind by the killed process, taken over below
    calls, stream = [], io.StringIO()
    res = run_units([({"n": 0}, 5), ({"n": 1}, 7)],
                    lambda k, i: calls.append(k["n"]) or [{"value": i * 3}], table,
                    columns=["value"], progress="lines", shard=Shard(), stream=stream)
    assert calls == [1] and res.skipped == 1
    assert "1 of 2 units already done in t.csv, 1 to run" in stream.getvalue()
    fresh = run_units([({"n": 0}, 5), ({"n": 1}, 7)], lambda k, i: [{"value": i * 3}],
                      tmp_path / "fresh.csv", columns=["value"], progress="quiet", shard=Shard())
    pd.testing.assert_frame_equal(res.table, fresh.table)
    assert not lock.exists()


def test_second_writer_is_refused_and_a_dead_owner_is_taken_over(tmp_path):
    table = tmp_path / "t.csv"
    with RunLock(table.with_name(".t.csv.rank0of1.lock")):
        with pytest.raises(ConfigError) as info:
            _run(table)
    assert "another medcl process" in str(info.value) and f"pid {os.getpid()}" in str(info.value)
    assert not table.exists()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    table.with_name(".t.csv.rank0of1.lock").write_text(
        f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}"}}')
    assert not _run(table).any_failed


def test_lines_show_unit_key_status_and_eta_and_quiet_shows_nothing(tmp_path):
    stream = io.StringIO()
    _run(tmp_path / "t.csv", progress="lines", stream=stream, what="split")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "4 splits to run"
    assert lines[1].startswith("[split 1/4] model=a seed=0: started (elapsed 0:00:0")
    assert lines[2].startswith("[split 1/4] model=a seed=0: ok in ") and "ETA" in lines[2]
    assert len(lines) == 9
    quiet = io.StringIO()
    _run(tmp_path / "q.csv", progress="quiet", stream=quiet)
    assert quiet.getvalue() == ""


def test_shards_split_the_units_and_merge_to_the_single_process_table(tmp_path):
    for rank in (1, 0):  # any finishing order gives the same merged table
        res = _run(tmp_path / "t.csv", shard=Shard(rank, 2))
        assert res.ran == 2
    assert sorted(p.name for p in tmp_path.glob("t*.csv")) == [
        "t.csv", "t.rank0of2.csv", "t.rank1of2.csv"]
    single = _run(tmp_path / "single.csv").table
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "t.csv"),
                                  pd.read_csv(tmp_path / "single.csv"))
    assert single.value.tolist() == [0, 1, 100, 121]
    # a later single-process rerun folds the ranks' rows into the table and skips every unit
    again = _run(tmp_path / "t.csv")
    assert again.ran == 0 and not list(tmp_path.glob("t.rank*.csv"))


def test_shard_from_options_and_environment():
    assert parse_shard("1/4") == Shard(1, 4) and parse_shard(None) is None
    for bad in ("4/4", "x", "1/0"):
        with pytest.raises(ConfigError):
            parse_shard(bad)
    assert Shard.from_environment({"RANK": "2", "WORLD_SIZE": "3"}) == Shard(2, 3)
    assert Shard.from_environment({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == Shard(1, 2)
    assert Shard.from_environment({"SLURM_ARRAY_TASK_ID": "3"}) == Shard()
    assert Shard.from_environment({}) == Shard()


def test_fabric_environment_detection(monkeypatch):
    for var in ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("GROUP_RANK", "0")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "test")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert Shard.from_environment() == Shard(1, 2)


def test_workers_give_the_same_table(tmp_path):
    res = _run(tmp_path / "w.csv", workers=2)
    pd.testing.assert_frame_equal(res.table, _run(tmp_path / "s.csv").table)


def test_empty_unit_list_returns_the_existing_table(tmp_path):
    _run(tmp_path / "t.csv")
    res = run_units([], square, tmp_path / "t.csv", columns=["model", "seed"],
                    progress="quiet", shard=Shard())
    assert res.ran == 0 and len(res.table) == 4


def test_work_outside_the_shard_is_left_to_other_ranks(tmp_path):
    calls = []
    _run(tmp_path / "t.csv", shard=Shard(0, 3), work=lambda k, i: calls.append(i) or square(k, i))
    assert calls == [0, 11]  # units 0 and 3 of 4


def test_progress_mode_is_checked(tmp_path):
    with pytest.raises(ConfigError, match="progress mode"):
        _run(tmp_path / "t.csv", progress="loud")


def test_lock_file_is_not_left_behind(tmp_path):
    _run(tmp_path / "t.csv")
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["t.csv"]

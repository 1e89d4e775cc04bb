"""Units of long work: rows written as each unit finishes, resume, progress lines, shards, a lock.

A benchmark or a batch evaluation is a list of *units* (model x subject x seed x split, one case
of an evaluation, ...). :func:`run_units` runs the units not yet in the table, and after each
one rewrites the table atomically with the unit's rows (``status`` ``ok`` or ``failed`` and the
error text), so an interrupted run (crash, ``kill -9``, a SLURM time limit) loses at most the
unit in progress and a rerun of the same command computes only what is missing. This is what
MOABB does with its results cache, per (pipeline, subject, session), done for every long command.

- **Resume**: a unit whose rows are in the table is skipped (one line says how many); failed units
  are run again (``retry_failed``). A ``signature`` of what the table is computed from is
  recorded beside it and a rerun with other inputs is refused (:func:`check_signature`).
- **Progress**: a rich bar on a terminal; otherwise one plain line when a unit starts and one when
  it ends (unit k/N, its key, status, elapsed, ETA), flushed at once, so a log file under nohup
  or SLURM shows where the run is; ``progress="quiet"`` for neither.
- **Many machines**: unit ``i`` belongs to rank ``i % world``. Rank and world size come from
  ``--shard K/N``, else from the launcher the way Lightning Fabric reads it (torchrun's
  ``RANK``/``WORLD_SIZE``, SLURM's ``SLURM_PROCID``/``SLURM_NTASKS``). A SLURM array is not
  read by itself (its tasks often run different subjects): pass
  ``--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT``. With more than one rank, each writes
  its own rows file (``<table>.rank<K>of<N>.csv``) and every rank rewrites the merged table,
  ordered as the unit list, after each of its units: the merge is the same whichever rank
  writes last.
- **One writer per table and rank**: a lock file beside the table refuses a second process; a lock
  left by a process that no longer runs (killed, crashed) is taken over.
- **Workers**: ``workers > 1`` runs units in that many processes on one machine (for small models:
  CSP+LDA, linear probes); rows are still written by the parent as each unit ends.
"""

from __future__ import annotations

import io
import json
import math
import numbers
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from medcl.util.clock import clock

from .atomic import to_plain, write_csv, write_text
from .errors import ConfigError, InputFileError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PROGRESS_MODES", "RunLock", "Shard", "check_signature", "parse_shard", "run_units",
           "signature_path"]

PROGRESS_MODES = ("auto", "bar", "lines", "quiet")
STATUS_COLUMNS = ("status", "error")
Work = Callable[[dict[str, Any], Any], list[dict[str, Any]]]


# -- shards --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Shard:
    """This process's share of the units: every unit ``i`` with ``i % world == rank``."""

    rank: int = 0
    world: int = 1

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ConfigError(f"shard {self.rank}/{self.world}: need 0 <= rank < world size")

    def owns(self, index: int) -> bool:
        return index % self.world == self.rank

    @property
    def label(self) -> str:
        return f"rank{self.rank}of{self.world}"

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> Shard:
        """Rank and world size as the launcher sets them (torchrun, SLURM tasks).

        torchrun and SLURM tasks are read through Lightning Fabric's own cluster environments, so
        a command sharded here agrees with a Fabric training launched the same way.
        """
        env = os.environ if environ is None else environ
        if environ is None:
            from lightning.fabric.plugins.environments import (
                SLURMEnvironment,
                TorchElasticEnvironment,
            )

            for kind in (TorchElasticEnvironment, SLURMEnvironment):
                if kind.detect():
                    launched = kind()
                    if launched.world_size() > 1:
                        return cls(launched.global_rank(), launched.world_size())
        else:  # explicit mapping (tests): the same variables, read directly
            for rank_var, world_var in (("RANK", "WORLD_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS")):
                if int(env.get(world_var, "1")) > 1:
                    return cls(int(env[rank_var]), int(env[world_var]))
        return cls()


def parse_shard(text: str | None) -> Shard | None:
    """``"K/N"`` (rank K of N, 0-based) as given to ``--shard``; ``None``/``""`` for none."""
    if not text:
        return None
    fix = "give e.g. --shard 0/4 (rank 0 of 4, ranks count from 0)"
    try:
        rank, world = (int(part) for part in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {text!r} is not RANK/WORLD", fix=fix) from None
    if world < 1 or not 0 <= rank < world:
        raise ConfigError(f"--shard {text!r}: need 0 <= RANK < WORLD", fix=fix)
    return Shard(rank, world)


# -- signature -----------------------------------------------------------------------------------
def signature_path(csv_path: str | os.PathLike[str]) -> Path:
    """Where the signature of ``csv_path`` is recorded (``cases.inputs.json`` for ``cases.csv``)."""
    path = Path(csv_path)
    return path.with_name(f"{path.name.removesuffix('.csv')}.inputs.json")


def _plain_signature(signature: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(to_plain(signature), sort_keys=True, default=str))


def check_signature(csv_path: str | os.PathLike[str], signature: dict[str, Any]) -> None:
    """Refuse to resume a table computed from other inputs than ``signature``.

    Nothing is written; call it before writing anything else into the output folder.

    Raises
    ------
    ConfigError
        ``csv_path`` exists and its recorded signature is missing, unreadable or differs; the
        message names the entries that differ.
    """
    path = Path(csv_path)
    if not path.exists() and not _rank_files(path):
        return
    record = signature_path(path)
    fix = "use another --out, or delete the folder to start afresh"
    try:
        old = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"holds results without a readable record of their inputs ({record.name}"
                          f": {type(exc).__name__})", path=path.parent, fix=fix) from exc
    new = _plain_signature(signature)
    if old != new:
        before, after = _flat(old), _flat(new)
        changed = [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        diff = "; ".join(f"{k} was {_short(before.get(k))}, now {_short(after.get(k))}"
                         for k in changed[:6])
        if len(changed) > 6:
            diff += f"; and {len(changed) - 6} more"
        raise ConfigError(f"holds results computed from other inputs ({diff})",
                          path=path.parent, fix=fix)


def _flat(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys, so a message names the one setting that changed."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


# -- lock ----------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """An exclusive lock file: a second process gets a :class:`ConfigError`; a lock whose process
    no longer runs on this host (``kill -9``, a crash) is taken over."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._held = False

    def _owner(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                stale = owner.get("host") == me["host"] and not _alive(int(owner.get("pid", 0)))
                if not stale and owner:
                    raise ConfigError(
                        f"another medcl process (pid {owner.get('pid')} on {owner.get('host')})"
                        " is writing this run folder", path=self.path.parent,
                        fix="wait for it to finish or use another --out; if that process no "
                        f"longer runs, delete {self.path.name}") from None
                self.path.unlink(missing_ok=True)  # stale (or empty: a crash while writing it)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self._held = True
            return self
        raise ConfigError("could not take the run folder's lock", path=self.path,
                          fix=f"delete {self.path.name} if no medcl process writes this folder")

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- progress ------------------------------------------------------------------------------------

def _describe(key: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in key.items())


class UnitProgress:
    """Progress of the units this process runs: a rich bar on a terminal, plain flushed lines
    when output goes to a file, nothing when quiet."""

    def __init__(self, mode: str = "auto", total: int = 0, todo: int = 0, what: str = "unit",
                 stream: TextIO | None = None) -> None:
        if mode not in PROGRESS_MODES:
            raise ConfigError(f"progress mode {mode!r}; choose one of {PROGRESS_MODES}")
        self.stream = sys.stderr if stream is None else stream
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode, self.total, self.todo, self.what = mode, total, todo, what
        self.finished = 0
        self.start = time.perf_counter()
        self._bar: Any = None

    def __enter__(self) -> UnitProgress:
        if self.mode == "bar" and self.todo:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TimeRemainingColumn(), console=Console(file=self.stream))
            self._bar.start()
            self._task = self._bar.add_task(f"{self.what}s", total=self.todo)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def say(self, text: str) -> None:
        if self.mode == "quiet":
            return
        if self._bar is not None:
            self._bar.console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def started(self, number: int, key: dict[str, Any]) -> None:
        if self.mode == "lines":
            self.say(f"[{self.what} {number}/{self.total}] {_describe(key)}: started "
                     f"(elapsed {clock(time.perf_counter() - self.start)})")
        elif self._bar is not None:
            self._bar.update(self._task, description=f"{self.what} {number}/{self.total} "
                             f"{_describe(key)}")

    def ended(self, number: int, key: dict[str, Any], status: str, seconds: float,
              error: str = "") -> None:
        self.finished += 1
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.finished * (self.todo - self.finished)
        if self._bar is not None:
            self._bar.advance(self._task)
            if status != "ok":
                self.say(f"{self.what} {number}/{self.total} {_describe(key)} failed: {error}")
        elif self.mode == "lines":
            tail = f": {error}" if error else ""
            self.say(f"[{self.what} {number}/{self.total}] {_describe(key)}: {status} in "
                     f"{seconds:.1f} s (elapsed {clock(elapsed)}, ETA {clock(eta)}){tail}")


# -- the table -----------------------------------------------------------------------------------
def _rank_files(path: Path) -> list[Path]:
    stem = path.name.removesuffix(".csv")
    return sorted(path.parent.glob(f"{stem}.rank*of*.csv"))


def _read(path: Path, key: Sequence[str]) -> pd.DataFrame:
    """The table as text, cell by cell (what a resumed run appends to)."""
    import pandas as pd

    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:
        raise InputFileError(f"cannot read the results table ({exc})", path=path,
                             fix="delete or move this file to start afresh") from exc
    missing = [c for c in (*key, "status") if c not in df.columns]
    if missing:
        raise InputFileError(f"results table lacks columns {missing}", path=path,
                             fix="delete or move this file (it was not written by medcl)")
    if "error" not in df.columns:
        df["error"] = ""
    return df


def _cell(value: Any) -> str:
    """A value as its CSV text, the same whatever the other rows hold: a resumed table is then
    the same text as an uninterrupted run's (a column of ints does not turn into floats because
    a failed unit left it empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _typed(text: pd.DataFrame, key: Sequence[str]) -> pd.DataFrame:
    """The text table with pandas' own column types (key columns and ``error`` stay text)."""
    import pandas as pd

    return pd.read_csv(io.StringIO(text.to_csv(index=False)), keep_default_na=False,
                       na_values=[""], dtype={k: str for k in (*key, "error")}).assign(
        error=lambda d: d["error"].fillna(""))


def _key_of(row: Any, key: Sequence[str]) -> tuple[str, ...]:
    return tuple(str(row[k]) for k in key)


def _ids(table: pd.DataFrame, key: Sequence[str]) -> list[tuple[str, ...]]:
    return [_key_of(r, key) for r in table[list(key)].to_dict("records")]


def _merged(path: Path, key: Sequence[str], columns: list[str],
            order: dict[tuple[str, ...], int]) -> pd.DataFrame:
    """The table and its ranks' rows files as one: a unit's rows come from the last file that
    holds it (rank files after the table), ordered as the unit list (rows of units not in the
    list, e.g. another method's, first, as they stand)."""
    import pandas as pd

    tables = [_read(p, key) for p in [path, *_rank_files(path)] if p.exists()]
    owner = {u: b for b, t in enumerate(tables) for u in _ids(t, key)}
    parts = []
    for b, t in enumerate(tables):
        ids = _ids(t, key)
        parts.append(t[[owner[u] == b for u in ids]])
    parts = [t for t in parts if not t.empty]
    if not parts:
        return pd.DataFrame(columns=columns, dtype=str)
    return _ordered(pd.concat(parts, ignore_index=True), key, columns, order)


def _ordered(df: pd.DataFrame, key: Sequence[str], columns: list[str],
             order: dict[tuple[str, ...], int]) -> pd.DataFrame:
    """Rows in unit-list order (rows of units not in the list first, as they stand)."""
    df = df.assign(_order=[order.get(u, -1) for u in _ids(df, key)])
    df = df.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)
    return df.reindex(columns=list(dict.fromkeys([*columns, *df.columns]))).fillna("")


@dataclass
class UnitsResult:
    """What :func:`run_units` leaves: the merged table and this process's counts."""

    table: pd.DataFrame
    ran: int
    skipped: int
    failed: int

    @property
    def any_failed(self) -> bool:
        return bool((self.table["status"] == "failed").any()) if len(self.table) else False


def run_units(
    units: Iterable[tuple[dict[str, Any], Any]],
    work: Work,
    csv_path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    signature: dict[str, Any] | None = None,
    retry_failed: bool = True,
    failed_rows: Callable[[str], list[dict[str, Any]]] | None = None,
    progress: str = "auto",
    what: str = "unit",
    shard: Shard | None = None,
    workers: int = 1,
    on_unit: Callable[[dict[str, Any], str], None] | None = None,
    on_table: Callable[[pd.DataFrame], None] | None = None,
    stream: TextIO | None = None,
) -> UnitsResult:
    """Run the units of ``units`` that ``csv_path`` lacks, writing rows as each one finishes.

    Parameters
    ----------
    units : iterable of (dict, object)
        Each unit's key (the columns that identify it, e.g. ``{"model": "eegnet", "seed": 0}``;
        every unit has the same key names) and whatever ``work`` needs. The order is the table's.
    work : callable
        ``work(key, item) -> list of dict``: the unit's rows (key columns are added). With
        ``workers > 1`` it must be picklable (a module-level function).
    csv_path : path
        The table; its folder is created if missing.
    columns : sequence of str, optional
        Column order of the table (key, result columns, ``status``, ``error``); extra columns
        that rows bring are appended.
    signature : dict, optional
        What the table is computed from; checked (:func:`check_signature`) and recorded.
    retry_failed : bool
        Run again the units whose rows all failed.
    failed_rows : callable, optional
        ``failed_rows(error) -> list of dict`` rows to record for a failed unit (default: one).
    progress : {"auto", "bar", "lines", "quiet"}
        See :class:`UnitProgress`.
    what : str
        What a unit is called in progress lines ("unit", "case", ...).
    shard : Shard, optional
        This process's share; default :meth:`Shard.from_environment`.
    workers : int
        Processes running units at once on this machine.
    on_unit, on_table : callable, optional
        ``on_unit(key, status)`` after each unit run here; ``on_table(table)`` with the merged
        table after each unit (rebuild ``results.md`` there, so the folder always shows a table).
    stream : file, optional
        Where progress goes (default: standard error).

    Returns
    -------
    UnitsResult
        ``table`` is read back from disk, so it is the same after a resume as after an
        uninterrupted run; its key columns are text (``"0"``, ``"001"``: a case name is never
        turned into a number), the other columns as pandas reads them.
    """
    if progress not in PROGRESS_MODES:
        raise ConfigError(f"progress mode {progress!r}; choose one of {PROGRESS_MODES}")
    units = [(dict(k), item) for k, item in units]
    key = list(units[0][0]) if units else list(columns or [])[:1]
    if any(list(k) != key for k, _ in units):
        raise ValueError("every unit must have the same key names, in the same order")
    path = Path(csv_path)
    shard = Shard.from_environment() if shard is None else shard
    cols = list(dict.fromkeys([*key, *(columns or []), *STATUS_COLUMNS]))
    order = {_key_of(k, key): i for i, (k, _) in enumerate(units)}
    mine_path = path if shard.world == 1 else path.with_name(
        f"{path.name.removesuffix('.csv')}.{shard.label}.csv")
    lock = RunLock(path.with_name(f".{path.name}.{shard.label}.lock"))
    with lock:
        if signature is not None:
            check_signature(path, signature)
            write_text(signature_path(path), json.dumps(_plain_signature(signature), indent=2,
                                                        sort_keys=True) + "\n")
        done = _merged(path, key, cols, order)
        status = {}
        for row in done.to_dict("records"):
            status.setdefault(_key_of(row, key), []).append(row["status"])

        def finished(k: dict[str, Any]) -> bool:
            seen = status.get(_key_of(k, key))
            return bool(seen) and not (retry_failed and all(s == "failed" for s in seen))

        todo = [(i, k, item) for i, (k, item) in enumerate(units)
                if shard.owns(i) and not finished(k)]
        owned = sum(shard.owns(i) for i in range(len(units)))
        if shard.world == 1:
            own_rows = done
            if _rank_files(path):  # an earlier sharded run: fold its ranks' rows into the table
                write_csv(path, done)
                for file in _rank_files(path):
                    file.unlink()
        else:
            own_rows = _read(mine_path, key) if mine_path.exists() else done.iloc[0:0]
        with UnitProgress(progress, total=len(units), todo=len(todo), what=what,
                          stream=stream) as bar:
            where = "" if shard.world == 1 else f" (shard {shard.rank}/{shard.world})"
            plural = what if owned == 1 else f"{what}s"
            bar.say(f"{owned - len(todo)} of {owned} {plural}{where} already done in {path.name}"
                    f", {len(todo)} to run" if owned - len(todo) else
                    f"{len(todo)} {what if len(todo) == 1 else f'{what}s'} to run{where}")
            failed = 0
            for i, k, rows, seconds in _execute(todo, work, workers, bar, failed_rows):
                error = rows[0]["error"] if rows else ""
                state = "failed" if any(r["status"] == "failed" for r in rows) else "ok"
                failed += state == "failed"
                own_rows = _ordered(_replace_unit(own_rows, key, k, rows, cols), key, cols, order)
                write_csv(mine_path, own_rows)
                merged = _merged(path, key, cols, order)
                if shard.world > 1:
                    write_csv(path, merged)
                if on_unit is not None:
                    on_unit(k, state)
                if on_table is not None:
                    on_table(_typed(merged, key))
                # said last: a unit the log calls ended is on disk, whenever the run is killed
                bar.ended(i + 1, k, state, seconds, error)
        table = _merged(path, key, cols, order)
        if shard.world > 1:
            write_csv(path, table)
    return UnitsResult(_typed(table, key), ran=len(todo), skipped=owned - len(todo), failed=failed)


def _replace_unit(table: pd.DataFrame, key: Sequence[str], k: dict[str, Any],
                  rows: list[dict[str, Any]], cols: list[str]) -> pd.DataFrame:
    import pandas as pd

    if len(table):
        table = table[[u != _key_of(k, key) for u in _ids(table, key)]]
    new = pd.DataFrame([{c: _cell(v) for c, v in row.items()} for row in rows], dtype=str)
    out = new if table.empty else pd.concat([table, new], ignore_index=True)
    return out.reindex(columns=list(dict.fromkeys([*cols, *out.columns]))).fillna("")


def _run_one(work: Work, k: dict[str, Any], item: Any,
             failed_rows: Callable[[str], list[dict[str, Any]]] | None
             ) -> tuple[list[dict[str, Any]], float]:
    start = time.perf_counter()
    base = {**k, "status": "ok", "error": ""}
    try:
        rows = [{**base, **r} for r in work(k, item)] or [base]
    except Exception as exc:  # one bad unit must not stop the others
        err = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        extra = failed_rows(err) if failed_rows is not None else [{}]
        rows = [{**base, **r, "status": "failed", "error": err} for r in extra]
    return rows, time.perf_counter() - start


def _execute(todo: list, work: Work, workers: int, bar: UnitProgress,
             failed_rows: Callable[[str], list[dict[str, Any]]] | None):
    """Yield ``(index, key, rows, seconds)`` as units finish, in this process or in workers."""
    if workers <= 1:
        for i, k, item in todo:
            bar.started(i + 1, k)
            rows, seconds = _run_one(work, k, item, failed_rows)
            yield i, k, rows, seconds
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        pending: dict[Future, tuple[int, dict]] = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < workers:
                i, k, item = queue.pop(0)
                bar.started(i + 1, k)
                pending[pool.submit(_run_one, work, k, item, failed_rows)] = (i, k)
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: pending[f][0]):
                i, k = pending.pop(fut)
                rows, seconds = fut.result()
                yield i, k, rows, seconds


def failed_message(csv_path: str | os.PathLike[str], key: Sequence[str],
                   what: str = "unit") -> str | None:
    """One line naming the failed units of a finished table, or ``None`` when none failed.

    A command that ran units prints it on standard error and exits with status 2, so a job
    script sees that something is missing; a rerun of the same command retries those units.
    """
    path = Path(csv_path)
    if not path.is_file():
        return None
    table = _read(path, key)
    failed = table[table["status"] == "failed"].drop_duplicates(list(key))
    if failed.empty:
        return None
    shown = "; ".join(f"{_describe({k: r[k] for k in key})}: {r['error']}"
                      for r in failed.head(3).to_dict("records"))
    more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
    return (f"{len(failed)} {what}(s) failed ({shown}{more}); see {path.name}, and rerun the "
            "same command to retry them")

"""``medcl demo``: a tour of the suite, one step per application, on data shipped with packages.

A step is a :class:`medcl.io.cli.DemoStep`; the core step lives here, and an app adds its own
through the entry point group ``medcl.demos`` (``name = "package.module:STEP"``). Each step
writes its own run folder under the tour's folder and returns a Markdown section; the tour joins
them into ``report.md``.
"""

from __future__ import annotations

import re
import time
from importlib.metadata import entry_points
from pathlib import Path

from medcl.io.cli import DemoStep

DEMOS_GROUP = "medcl.demos"


def _core(run_dir: Path, epochs: int | None, seed: int) -> str:
    from medcl.core_demo import run_core_demo

    return run_core_demo(run_dir, epochs=epochs, seed=seed)


CORE = DemoStep(
    "core",
    "SimCLR (NT-Xent) on scikit-learn's digits through the engine; kNN and linear probes of the "
    "trained encoder vs its random initialisation (about a minute on 2 CPU cores).",
    _core,
)


def available_steps() -> dict[str, DemoStep]:
    """The core step, then the steps registered by installed apps, in name order."""
    steps = {CORE.name: CORE}
    for ep in sorted(entry_points(group=DEMOS_GROUP), key=lambda e: e.name):
        step = ep.load()
        steps[step.name] = step
    return steps


def run_tour(out: Path, steps: list[DemoStep], *, epochs: int | None, seed: int) -> Path:
    """Run ``steps`` into ``out/<step>/`` and write ``out/report.md``; returns its path.

    The tour's own folder holds ``config.yaml``, ``timing.csv`` (seconds per step) and
    ``report.md``; each step's training log is ``out/<step>/metrics.csv`` (or in the step's
    method folders).
    """
    from medcl.io import RunFolder

    folder = RunFolder.create(out)
    folder.write_config({"steps": [s.name for s in steps], "epochs": epochs}, seed=seed)
    sections, timing = [], []
    for step in steps:
        start = time.perf_counter()
        section = step.run(Path(out) / step.name, epochs, seed)
        # a step links its pictures relative to its own folder; the tour's report is one up
        sections.append(re.sub(r"\]\((?!https?:|/)", f"]({step.name}/", section))
        timing.append({"step": step.name, "seconds": round(time.perf_counter() - start, 1)})
    import pandas as pd

    timing_md = folder.write_table("timing", pd.DataFrame(timing), floatfmt=".1f")
    report = "\n\n".join(
        ["# medcl demo", f"Seed {seed}. Each step's run folder is `{out}/<step>/`.",
         "## Timing\n\n" + timing_md, *sections]
    )
    folder.write_report(report + "\n")
    return folder.report_path

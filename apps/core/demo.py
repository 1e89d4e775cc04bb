"""The ``core-image`` step of ``medcl demo`` (registered in the ``medcl.demos`` entry points):
a short ``medcl core image compare`` on scikit-learn's digits."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep

DEMO_METHODS = ("simclr", "dcl", "mv-infonce", "supcon")
DEMO_BUDGET_SECONDS = 40.0


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    from .compare import compare_run
    from .config import ImageConfig
    from .recipes import available

    have = set(available())
    methods = [m for m in DEMO_METHODS if m in have]
    budget = None if epochs is not None else DEMO_BUDGET_SECONDS
    text = compare_run(run_dir, ImageConfig(data="digits"), methods=methods, seeds=[seed],
                       budget_seconds=budget, epochs=epochs, progress=False)
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return ("## core-image: contrastive methods compared on digits\n" + body
            + "\n![accuracy per method](compare.png)\n")


STEP = DemoStep(
    "core-image",
    "SimCLR, DCL, MV-InfoNCE and SupCon pretrained on scikit-learn's digits under one "
    f"wall-clock budget ({DEMO_BUDGET_SECONDS:.0f} s of training), scored by kNN and linear "
    "probes (about a minute on 2 CPU cores)",
    _run,
)

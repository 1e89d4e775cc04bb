"""The ``core-graph`` step of ``medcl demo`` (registered in the ``medcl.demos`` entry points):
a short ``medcl core graph compare`` of GRACE, GRACE + POT and gCooL on the planted-partition
graph."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep

DEMO_METHODS = ["grace", "grace+pot", "gcool"]
DEMO_EPOCHS = 40


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    from .graph_compare import compare_run
    from .graph_train import GraphConfig

    base = GraphConfig(data="sbm", nodes=400, epochs=epochs or DEMO_EPOCHS)
    text = compare_run(run_dir, base, DEMO_METHODS, [seed], progress=False)
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return ("## core-graph: graph contrastive methods on a planted-partition graph\n" + body
            + "\n![scores per method](compare.png)\n")


STEP = DemoStep(
    "core-graph",
    f"GRACE, GRACE + POT and gCooL pretrained {DEMO_EPOCHS} epochs on a 400-node planted-"
    "partition graph, scored by linear probe, NMI, ARI and modularity (about 20 s on 2 CPU "
    "cores)",
    _run,
)

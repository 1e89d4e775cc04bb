"""The ``core-points`` step of ``medcl demo`` (registered in the ``medcl.demos`` entry points):
a short ``medcl core points compare`` of FAC, PointContrast and cloud SimCLR on generated rooms."""

from __future__ import annotations

from pathlib import Path

from medcl.io.cli import DemoStep


def _run(run_dir: Path, epochs: int | None, seed: int) -> str:
    from .points_compare import compare_run
    from .points_train import PointsConfig

    base = PointsConfig(data="scenes", backbone="pointnet", points=512, epochs=epochs or 2,
                        scenes=6, fractions=[0.01, 0.1])
    text = compare_run(run_dir, base, seeds=[seed], progress=False)
    body = text.split("\n", 1)[1] if text.startswith("# ") else text
    return ("## core-points: FAC, PointContrast and cloud SimCLR on generated rooms\n" + body
            + "\n![mIoU per method](compare.png)\n")


STEP = DemoStep(
    "core-points",
    "FAC (foreground-aware contrast), PointContrast and cloud SimCLR pretrained on generated "
    "rooms and scored by per-point linear-probe mIoU at 1 % and 10 % labels (under a minute on "
    "2 CPU cores)",
    _run,
)

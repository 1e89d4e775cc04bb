"""``medcl core hvs run``: the nine low-level vision tests of Cai et al. (CVPR 2025) on one
encoder, written as an evaluation folder (config, summary table, curves, figures, report)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

from .hvs_encoders import resolve_encoder


@dataclass
class HVSConfig:
    """Resolved settings of one probe run (the paper samples 20 conditions and 10 ratios)."""

    encoder: str
    conditions: int = 8
    ratios: int = 10
    steps: int = 10
    batch_size: int = 32
    device: str = "cpu"
    tests: list[str] = field(default_factory=list)


def check_config(cfg: HVSConfig) -> None:
    from medcl.contrastive.hvs.battery import TESTS
    from medcl.io import ConfigError

    for name, value, low in (("--conditions", cfg.conditions, 3), ("--ratios", cfg.ratios, 3),
                             ("--steps", cfg.steps, 1), ("--batch-size", cfg.batch_size, 1)):
        if value < low:
            raise ConfigError(f"{name} must be at least {low}, got {value}")
    unknown = [t for t in cfg.tests if t not in TESTS]
    if unknown:
        raise ConfigError(f"unknown test(s) {', '.join(unknown)}",
                          fix=f"choose among {', '.join(TESTS)}")
    if cfg.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda but no CUDA device is available",
                              fix="drop --device (CPU)")


def run_hvs(cfg: HVSConfig, out: Path, *, encoder: nn.Module | None = None,
            progress: bool = True) -> str:
    """Run the tests of ``cfg`` on its encoder (or on ``encoder`` when given, e.g. a module
    built in a benchmark) into run folder ``out``; return the report's Markdown.

    The encoder is resolved before anything is written, so a bad spec leaves no folder.
    Writes ``config.yaml``, ``metrics.csv``, ``hvs.csv`` and ``hvs.md`` (one row per test: Spearman,
    RMSE of log10 thresholds/matches), ``curves.csv`` (per condition: human and model),
    ``hvs_<test>.png`` and ``report.md``.
    """
    import pandas as pd

    from medcl.contrastive.hvs.battery import TESTS, Grid, module_embedder, run_battery
    from medcl.io import RunFolder, to_markdown_table, write_text

    from .hvs_figures import test_figure

    check_config(cfg)
    module = resolve_encoder(cfg.encoder) if encoder is None else encoder
    module = module.to(cfg.device).eval()
    tests = cfg.tests or list(TESTS)
    cfg.tests = tests
    grid = Grid(conditions=cfg.conditions, ratios=cfg.ratios, steps=cfg.steps,
                batch=cfg.batch_size)
    start = time.perf_counter()
    results = run_battery(module_embedder(module, cfg.device), grid, tests,
                          progress=print if progress else None)
    seconds = time.perf_counter() - start

    folder = RunFolder.create(out)
    folder.write_config(asdict(cfg), seed=None, extra={"command": "medcl core hvs run"})
    summary = pd.DataFrame([r.summary() for r in results])
    folder.write_metrics(summary)
    table = folder.write_table("hvs", summary[["test", "kind", "spearman", "rmse_log10",
                                               "conditions", "seconds"]])
    write_text(folder.root / "hvs.md", table + "\n")
    curves = pd.DataFrame([row for r in results for row in r.curve_rows()])
    folder.write_table("curves", curves)
    import matplotlib.pyplot as plt

    for r in results:
        fig = test_figure(r, cfg.encoder)
        folder.save_figure(f"hvs_{r.key}", fig)
        plt.close(fig)
    refs = pd.DataFrame([{"test": r.key, "human reference": r.reference} for r in results])
    report = (
        f"# Low-level vision probe: {cfg.encoder}\n\n"
        "Nine tests of Cai et al., \"Do computer vision foundation models learn the low-level "
        "characteristics of the human visual system?\" (CVPR 2025): response "
        "S = arccos(cos(f(T), f(R))) / pi; Spearman = rank correlation of the contrast ratio "
        "to the human threshold with S (detection, masking; higher agrees with humans) or of "
        "model vs human matches (matching); RMSE = root-mean-square log10 difference of the "
        "model's thresholds (criterion: median pooled S) or matched contrasts from the human "
        "reference.\n\n"
        f"{table}\n\n"
        f"{len(tests)} tests, {cfg.conditions} conditions x {cfg.ratios} ratios, "
        f"{cfg.steps} bisection steps, {seconds:.1f} s on {cfg.device}.\n\n"
        "## Human references\n\n"
        f"{to_markdown_table(refs)}\n\n"
        "## Figures\n\n"
        + "\n".join(f"![{r.key}](hvs_{r.key}.png)" for r in results) + "\n")
    folder.write_report(report)
    return report

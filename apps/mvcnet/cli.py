"""``medcl mvcnet``: the command-line group of this app (heavy imports inside commands)."""

from __future__ import annotations

from medio.cli import app_group

PAPER = (
    'Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery '
    'Classification", Knowledge-Based Systems 2025, arXiv:2502.17482'
)

app = app_group(
    "mvcnet",
    "MVCNet: multi-view contrastive CNN+Transformer decoder of motor-imagery EEG.",
    paper=PAPER,
    workflow="simulate, train, predict, benchmark on EEG recordings and MOABB datasets"
    " (command group registered; the workflow is being built)",
)

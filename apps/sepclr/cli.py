"""``medcl sepclr``: the command-line group of this app (heavy imports inside commands)."""

from __future__ import annotations

from medio.cli import app_group

PAPER = (
    'Louiset et al., "Separating common from salient patterns with Contrastive Representation '
    'Learning", ICLR 2024, arXiv:2402.11928'
)

app = app_group(
    "sepclr",
    "SepCLR: contrastive analysis separating common from salient patterns (healthy "
    "background vs diseased target).",
    paper=PAPER,
    workflow="train and probe common/salient spaces on background and target datasets"
    " (command group registered; the workflow is being built)",
)

"""``medcl pirads``: the command-line group of this app (heavy imports inside commands)."""

from __future__ import annotations

from medio.cli import app_group

PAPER = (
    'Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using '
    'co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970'
)

app = app_group(
    "pirads",
    "PI-RADS v2 prostate zones (PZ, TZ, DPU, AFS) with a co-trained dual-path 3D CNN.",
    paper=PAPER,
    workflow="phantom, train, segment, evaluate on T2-weighted NIfTI volumes"
    " (command group registered; the workflow is being built)",
)

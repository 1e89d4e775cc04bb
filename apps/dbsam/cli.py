"""``medcl dbsam``: the command-line group of this app (heavy imports inside commands)."""

from __future__ import annotations

from medio.cli import app_group

PAPER = (
    'Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation", '
    'MICCAI 2024, arXiv:2410.04172'
)

app = app_group(
    "dbsam",
    "DB-SAM: dual-branch adapted Segment Anything for 2D and 3D medical image "
    "segmentation.",
    paper=PAPER,
    workflow="train, segment, evaluate on NIfTI volumes and 2D images"
    " (command group registered; the workflow is being built)",
)

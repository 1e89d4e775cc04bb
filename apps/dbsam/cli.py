"""``medcl dbsam``: the command-line group of this app (typer; heavy imports inside commands)."""

from __future__ import annotations

import typer

PAPER = (
    'Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation", '
    'MICCAI 2024, arXiv:2410.04172'
)
PLANNED = "train, segment, evaluate on NIfTI volumes and 2D images"

app = typer.Typer(
    name="dbsam",
    help="DB-SAM: dual-branch adapted Segment Anything for 2D and 3D medical image "
    "segmentation.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep this a command group even while it has a single command."""


@app.command()
def about() -> None:
    """The paper this app implements, its status and its data cards."""
    import medio

    typer.echo(f"paper: {PAPER}")
    typer.echo(f"status: command group registered; its workflow ({PLANNED}) is being built")
    cards = [c.id for c in medio.list_cards() if c.app == "dbsam"]
    typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

"""``medcl pirads``: the command-line group of this app (typer; heavy imports inside commands)."""

from __future__ import annotations

import typer

PAPER = (
    'Das, Ghosh, Stober, "PI-RADS v2 Compliant Automated Segmentation of Prostate Zones Using '
    'co-training Motivated Multi-task Dual-Path CNN", 2023, arXiv:2309.12970'
)
PLANNED = "phantom, train, segment, evaluate on T2-weighted NIfTI volumes"

app = typer.Typer(
    name="pirads",
    help="PI-RADS v2 prostate zones (PZ, TZ, DPU, AFS) with a co-trained dual-path 3D CNN.",
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
    cards = [c.id for c in medio.list_cards() if c.app == "pirads"]
    typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

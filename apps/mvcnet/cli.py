"""``medcl mvcnet``: the command-line group of this app (typer; heavy imports inside commands)."""

from __future__ import annotations

import typer

PAPER = (
    'Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery '
    'Classification", Knowledge-Based Systems 2025, arXiv:2502.17482'
)
PLANNED = "simulate, train, predict, benchmark on EEG recordings and MOABB datasets"

app = typer.Typer(
    name="mvcnet",
    help="MVCNet: multi-view contrastive CNN+Transformer decoder of motor-imagery EEG.",
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
    cards = [c.id for c in medio.list_cards() if c.app == "mvcnet"]
    typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

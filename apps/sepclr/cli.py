"""``medcl sepclr``: the command-line group of this app (typer; heavy imports inside commands)."""

from __future__ import annotations

import typer

PAPER = (
    'Louiset et al., "Separating common from salient patterns with Contrastive Representation '
    'Learning", ICLR 2024, arXiv:2402.11928'
)
PLANNED = "train and probe common/salient spaces on background and target datasets"

app = typer.Typer(
    name="sepclr",
    help="SepCLR: contrastive analysis separating common from salient patterns (healthy "
    "background vs diseased target).",
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
    cards = [c.id for c in medio.list_cards() if c.app == "sepclr"]
    typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

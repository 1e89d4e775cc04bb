"""``medcl core image``: pretrain, compare and embed with the core's image methods."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="image",
    help="Image methods (SimCLR, DCL, SupCon, CACR, AMCL, MV-InfoNCE, MV-DHEL, SwAV, FT, Hydra).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep this a command group while it has a single command."""

"""``medcl core``: one sub-group per modality of the core's general methods (heavy imports
inside commands)."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="core",
    help="The contrastive core's general methods: pretrain, compare and embed per modality.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Keep this a command group while it has few sub-groups."""


def _add_groups() -> None:
    from medcl.core.image_cli import app as image_app

    app.add_typer(image_app, name="image")


_add_groups()

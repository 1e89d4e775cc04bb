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


def _add_groups() -> None:
    # Each group's module imports only typer at import time; torch and friends load per command.
    from importlib import import_module

    for name in ("image", "graph", "points", "t2i", "itm", "gcd", "sr", "hvs", "skeleton", "rec"):
        app.add_typer(import_module(f"medcl.core.{name}_cli").app, name=name)


_add_groups()

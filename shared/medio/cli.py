"""What the apps' command-line groups share: the group itself and its ``about`` command."""

from __future__ import annotations

import typer


def app_group(name: str, help: str, *, paper: str, workflow: str) -> typer.Typer:
    """A typer group ``medcl <name>`` with an ``about`` command (paper, workflow, data cards).

    Parameters
    ----------
    name : str
        The group's name under ``medcl`` (also the ``app`` field of its data cards).
    help : str
        One-line description shown by ``medcl --help``.
    paper : str
        Citation of the paper the app implements.
    workflow : str
        The commands the app offers or is building, in words.
    """
    app = typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False)

    @app.callback()
    def _group() -> None:
        """Keep this a command group even while it has a single command."""

    @app.command()
    def about() -> None:
        """The paper this app implements, its workflow and its data cards."""
        from medio.cards import list_cards

        typer.echo(f"paper: {paper}")
        typer.echo(f"workflow: {workflow}")
        cards = [c.id for c in list_cards() if c.app == name]
        typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

    return app

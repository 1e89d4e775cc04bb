"""What the apps' command-line groups share: the group, its ``about`` command, demo steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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
        from medcl.io.cards import list_cards

        typer.echo(f"paper: {paper}")
        typer.echo(f"workflow: {workflow}")
        cards = [c.id for c in list_cards() if c.app == name]
        typer.echo(f"data cards: {', '.join(cards) if cards else 'none yet'}")

    return app


@dataclass(frozen=True)
class DemoStep:
    """One stop of ``medcl demo``; an app registers one in the ``medcl.demos`` entry points.

    ``run(run_dir, epochs, seed)`` trains/evaluates into ``run_dir`` and returns a Markdown
    section (starting with a ``##`` heading) whose links are relative to ``run_dir``;
    ``epochs=None`` means the step's own default.
    """

    name: str
    description: str
    run: Callable[[Path, int | None, int], str]


def int_list(text: str, flag: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` for a CLI flag; anything else is a usage error naming it."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of integers",
                                 param_hint=flag) from err

"""``medcl cards``: list, show and validate the data cards.

Examples
--------
``medcl cards list``, ``medcl cards show bnci2014_001``, ``medcl cards validate`` (all cards) or
``medcl cards validate my_card.yaml other_cards/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import medcl.io

app = typer.Typer(
    name="cards",
    help="Data cards: what each public dataset is, how to get it, how medcl evaluates on it.",
    no_args_is_help=True,
    add_completion=False,
)

_CARD_SUFFIXES = (".yaml", ".yml")

CardsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cards-dir",
        help="Folder of <id>.yaml cards (default: $MEDCL_CARDS_DIR or the repository's "
        "data_cards/).",
        file_okay=False,
    ),
]


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(error: medcl.io.MedclError) -> typer.Exit:
    _err().print(f"[bold red]error:[/] {escape(str(error))}")
    return typer.Exit(error.exit_code)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return escape(" ".join(str(value).split()))


@app.command("list")
def list_command(cards_dir: CardsDirOption = None) -> None:
    """List the data cards."""
    try:
        cards = medcl.io.list_cards(cards_dir)
    except medcl.io.MedclError as exc:
        raise _fail(exc) from None
    table = Table(title=f"Data cards ({len(cards)})", show_lines=False)
    for column in ("id", "app", "modality", "title", "access", "licence"):
        table.add_column(column, overflow="fold", no_wrap=column == "id")
    for card in cards:
        table.add_row(
            card.id,
            card.app,
            card.modality,
            escape(card.title),
            card.access_method,
            escape(card.licence),
        )
    _out().print(table)


def _facts_table(card: medcl.io.DataCard) -> Table:
    """Every scalar fact of a card (id, app, source, access, licence, ...), one per row."""
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column("field", style="bold", no_wrap=True)
    facts.add_column("value", overflow="fold")
    skip = {"title", "labels", "protocol", "reference_results"}
    for key, value in card.to_dict().items():
        if key not in skip:
            facts.add_row(key, _text(value))
    return facts


def _labels_table(card: medcl.io.DataCard) -> Table:
    labels = Table(title="labels")
    labels.add_column("code", justify="right")
    labels.add_column("name")
    for code, name in card.labels.items():
        labels.add_row(escape(str(code)), escape(name))
    return labels


def _protocol_table(card: medcl.io.DataCard) -> Table:
    """The evaluation protocol: one row per split (or one ``splits`` row), then the notes."""
    protocol = Table(title=f"protocol: {escape(str(card.protocol['name']))}", show_header=False)
    protocol.add_column("part", style="bold", no_wrap=True)
    protocol.add_column("description", overflow="fold")
    splits = card.protocol["splits"]
    if isinstance(splits, dict):
        for name, text in splits.items():
            protocol.add_row(escape(str(name)), _text(text))
    else:
        protocol.add_row("splits", _text(splits))
    if card.protocol.get("notes"):
        protocol.add_row("notes", _text(card.protocol["notes"]))
    return protocol


def _results_table(card: medcl.io.DataCard) -> Table:
    """The published numbers to compare with: ``value ± std`` per method, metric and split."""
    results = Table(title="reference results")
    for column in ("method", "metric", "value", "split", "source"):
        justify = "right" if column == "value" else "left"
        results.add_column(column, overflow="fold", justify=justify)
    for r in card.reference_results:
        value = f"{r['value']:g}" + (f" ± {r['std']:g}" if r.get("std") is not None else "")
        results.add_row(
            _text(r["method"]), _text(r["metric"]), value, _text(r["split"]), _text(r["source"])
        )
    return results


@app.command("show")
def show_command(
    card_id: Annotated[str, typer.Argument(metavar="ID", help="Card id, e.g. bnci2014_001.")],
    cards_dir: CardsDirOption = None,
) -> None:
    """Show one data card in full."""
    try:
        card = medcl.io.get_card(card_id, cards_dir)
    except medcl.io.MedclError as exc:
        raise _fail(exc) from None
    out = _out()
    out.print(f"[bold]{escape(card.title)}[/]")
    out.print(f"[dim]{escape(str(card.path))}[/]")
    out.print(_facts_table(card))
    out.print(_labels_table(card))
    out.print(_protocol_table(card))
    if card.reference_results:
        out.print(_results_table(card))
    else:
        out.print("[dim]reference results: none recorded[/]")


def _expand(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in _CARD_SUFFIXES))
        else:
            files.append(p)
    return files


@app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATHS]...",
            help="Card files or folders of cards (default: every card in the cards folder).",
        ),
    ] = None,
    cards_dir: CardsDirOption = None,
) -> None:
    """Check cards against the schema; exit status 2 if any card is invalid."""
    out, err = _out(), _err()
    targets = list(paths) if paths else [cards_dir or medcl.io.cards_dir()]
    if not paths and not targets[0].is_dir():
        raise _fail(
            medcl.io.DataCardError(
                "data card folder not found",
                path=targets[0],
                fix="pass card files, or set MEDCL_CARDS_DIR / --cards-dir",
            )
        )
    files = _expand(targets)
    if not files:
        raise _fail(
            medcl.io.DataCardError(
                "no .yaml cards found",
                path=", ".join(map(str, targets)),
                fix="pass card files or a folder holding <id>.yaml cards",
            )
        )
    failed = 0
    for file in files:
        try:
            card = medcl.io.load_card(file)
        except medcl.io.DataCardError as exc:
            failed += 1
            err.print(f"[bold red]invalid:[/] {escape(str(exc))}")
        else:
            out.print(f"[green]ok[/] {escape(str(file))} ({card.id})")
    if failed:
        err.print(f"{failed} of {len(files)} card(s) invalid")
        raise typer.Exit(medcl.io.MedclError.exit_code)
    out.print(f"{len(files)} card(s) valid")

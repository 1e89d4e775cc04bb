"""``medcl evaluate`` and ``medcl report``: card-driven batch evaluation and its HTML page.

The front door imports no app: the app's evaluator is found through the ``medcl.evaluators``
entry-point group (:func:`medcl.io.evaluate.load_evaluator`); everything heavy is imported
inside the commands.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer


def _parse_options(items: list[str] | None) -> dict[str, str]:
    from medcl.io.errors import ConfigError

    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--option {item!r} is not KEY=VALUE",
                              fix="e.g. --option channel=0")
        out[key.strip()] = value.strip()
    return out


def evaluate(
    card: Annotated[str, typer.Option(help="Data card id (see `medcl cards list`).")],
    app_name: Annotated[str, typer.Option(
        "--app", help="Evaluator: an app (dbsam, pirads, mvcnet, sepclr) or module:NAME.")],
    out: Annotated[Path, typer.Option(help="Evaluation folder (created; a rerun resumes).")],
    root: Annotated[Path | None, typer.Option(
        help="Folder holding the card's data, laid out as the card says.")] = None,
    model: Annotated[Path | None, typer.Option(
        help="Trained run folder of the app.")] = None,
    split: Annotated[str, typer.Option(help="Split of the card to evaluate, or 'all'.")] = "all",
    workers: Annotated[int, typer.Option(help="Processes scoring cases at once.")] = 1,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N cases only.")] = None,
    subjects: Annotated[str | None, typer.Option(
        help="Subjects, e.g. 1-9 or 1,3 (EEG cards).")] = None,
    attributes: Annotated[Path | None, typer.Option(
        help="Attributes CSV (sepclr cards).")] = None,
    option: Annotated[list[str] | None, typer.Option(
        help="Evaluator option KEY=VALUE (repeatable).")] = None,
    shard: Annotated[str | None, typer.Option(
        help="This process's share RANK/WORLD (default: from torchrun/SLURM).")] = None,
    progress: Annotated[str, typer.Option(help="auto, bar, lines or quiet.")] = "auto",
) -> None:
    """Evaluate a model on a card's cases; writes OUT/cases.csv, summary and report.html."""
    from medcl.io import get_card
    from medcl.io.evaluate import run_evaluation
    from medcl.io.units import failed_message, parse_shard

    options = _parse_options(option)
    if subjects:
        options["subjects"] = subjects
    if attributes is not None:
        options["attributes"] = str(attributes.resolve())
    result = run_evaluation(spec=app_name, card=get_card(card), root=root, out=out,
                            model=model, split=split, limit=limit, workers=workers,
                            options=options, progress=progress, shard=parse_shard(shard))
    typer.echo(f"cases: {out / 'cases.csv'}")
    if result["report"] is not None:
        typer.echo(f"report: {result['report']}")
    message = failed_message(out / "cases.csv", ["case_id"], what="case")
    if message:
        typer.secho(message, fg="red", err=True)
        sys.exit(2)


def report(
    folder: Annotated[Path, typer.Argument(help="An evaluation folder (medcl evaluate --out).")],
    case: Annotated[str | None, typer.Option(
        help="Case the 3-D viewer opens on (default: the first scored).")] = None,
) -> None:
    """(Re)build FOLDER/report.html and print its path."""
    from medcl.io.report import write_report

    typer.echo(str(write_report(folder, case=case)))

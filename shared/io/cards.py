"""Data cards: one YAML file per public dataset, saying what it is and how medcl uses it.

A card lives in ``data_cards/<id>.yaml`` and records where the data come from, under which
licence, how to obtain it, what the files look like, what the labels mean, which evaluation
protocol medcl follows and which published results to compare with.

Schema
------
Required fields:

``id``
    str matching ``[A-Za-z0-9_-]+``, equal to the file stem.
``title``, ``task``, ``licence``, ``citation``, ``format``, ``layout``
    non-empty str.
``modality``
    one of ``ct, mr, mri, eeg, image, x-ray, fundus, multi``.
``app``
    one of ``dbsam, pirads, mvcnet, sepclr, core``.
``source``
    mapping with ``url`` (http or https); further keys (``docs``, ``paper``, ...) allowed.
``access``
    mapping with ``method`` one of ``moabb`` (needs ``moabb_id``), ``manual`` (needs ``steps``,
    a list of str), ``package`` (needs ``loader``, a dotted name such as
    ``sklearn.datasets.load_digits``) or ``url`` (needs ``url``).
``labels``
    non-empty mapping of int or str code to str name.
``protocol``
    mapping with ``name`` (str), ``splits`` (str or mapping) and optional ``notes`` (str).
``reference_results``
    list (may be empty) of mappings with ``method``, ``metric``, ``split``, ``source`` (str),
    ``value`` (number), optional ``std`` (number) and ``notes`` (str).

Optional fields: ``subjects`` (int), ``channels`` (int or list), ``sampling_rate_hz`` (number),
``spacing_mm`` (list of numbers), ``notes`` (str).

Validation collects every problem, each naming its field path (``reference_results[0].source``).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import DataCardError

__all__ = [
    "ACCESS_METHODS",
    "APPS",
    "MODALITIES",
    "DataCard",
    "cards_dir",
    "get_card",
    "list_cards",
    "load_card",
    "validate_card_dict",
]

MODALITIES: tuple[str, ...] = ("ct", "mr", "mri", "eeg", "image", "x-ray", "fundus", "multi")
APPS: tuple[str, ...] = ("dbsam", "pirads", "mvcnet", "sepclr", "core")
ACCESS_METHODS: dict[str, tuple[str, str]] = {
    # method -> (required key, what it must be)
    "moabb": ("moabb_id", "the MOABB dataset class name, e.g. 'BNCI2014_001'"),
    "manual": ("steps", "a list of instructions (strings)"),
    "package": ("loader", "a dotted loader name, e.g. 'sklearn.datasets.load_digits'"),
    "url": ("url", "an http(s) download address"),
}

_REQUIRED_STR = ("title", "task", "licence", "citation", "format", "layout")
_REQUIRED = (
    "id",
    "title",
    "modality",
    "app",
    "task",
    "source",
    "licence",
    "citation",
    "access",
    "format",
    "layout",
    "labels",
    "protocol",
    "reference_results",
)
_OPTIONAL = ("subjects", "channels", "sampling_rate_hz", "spacing_mm", "notes")
_ID_RE = re.compile(r"[A-Za-z0-9_\-]+")
_URL_RE = re.compile(r"https?://\S+")
_DOTTED_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")
_CARD_SUFFIXES = (".yaml", ".yml")


@dataclass
class DataCard:
    """A validated data card (see the module docstring for the meaning of each field)."""

    id: str
    title: str
    modality: str
    app: str
    task: str
    source: dict[str, Any]
    licence: str
    citation: str
    access: dict[str, Any]
    format: str
    layout: str
    labels: dict[int | str, str]
    protocol: dict[str, Any]
    reference_results: list[dict[str, Any]]
    subjects: int | None = None
    channels: int | list[Any] | None = None
    sampling_rate_hz: float | None = None
    spacing_mm: list[float] | None = None
    notes: str | None = None
    path: Path | None = field(default=None, compare=False)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, path: str | os.PathLike[str] | None = None
    ) -> DataCard:
        """Build a card from a mapping, raising :class:`DataCardError` if it is invalid.

        Parameters
        ----------
        data : mapping
            The parsed YAML.
        path : str or os.PathLike, optional
            The card file; its stem must equal ``data["id"]``.
        """
        stem = Path(path).stem if path is not None else None
        problems = _validate(data, stem=stem)
        if problems:
            raise _card_error(problems, path)
        names = {f.name for f in fields(cls)} - {"path"}
        kwargs = {k: v for k, v in data.items() if k in names}
        return cls(**kwargs, path=Path(path) if path is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """The card as a mapping in schema order, without ``path`` and unset optional fields."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "path":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            out[f.name] = value
        return out

    @property
    def access_method(self) -> str:
        """How the data are obtained: ``moabb``, ``manual``, ``package`` or ``url``."""
        return str(self.access["method"])

    @property
    def moabb_id(self) -> str | None:
        """The MOABB dataset class name, when ``access.method`` is ``moabb``."""
        value = self.access.get("moabb_id")
        return None if value is None else str(value)


# -- validation ---------------------------------------------------------------------------------
def _type_name(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
        type(None): "empty",
    }.get(type(value), type(value).__name__)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class _Checker:
    """Collects ``(field, message)`` problems."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str]] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append((where, f"field '{where}' {message}"))

    def string(
        self, d: Mapping[str, Any], key: str, where: str, *, required: bool = True
    ) -> str | None:
        if key not in d or d[key] is None:
            if required:
                self.add(where, "is missing" if key not in d else "is empty")
            return None
        value = d[key]
        if not isinstance(value, str):
            self.add(where, f"must be a string, got {_type_name(value)}")
            return None
        if not value.strip():
            self.add(where, "is empty")
            return None
        return value

    def number(self, d: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> None:
        if key not in d or d[key] is None:
            if required:
                self.add(where, "is missing" if key not in d else "is empty")
            return
        if not _is_number(d[key]):
            self.add(where, f"must be a number, got {_type_name(d[key])} {d[key]!r}")

    def mapping(self, d: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any] | None:
        if key not in d:
            self.add(where, "is missing")
            return None
        value = d[key]
        if not isinstance(value, Mapping):
            self.add(where, f"must be a mapping, got {_type_name(value)}")
            return None
        return value

    def choice(
        self, d: Mapping[str, Any], key: str, where: str, options: tuple[str, ...]
    ) -> str | None:
        value = self.string(d, key, where)
        if value is not None and value not in options:
            self.add(where, f"must be one of {', '.join(options)}; got {value!r}")
            return None
        return value

    def url(self, d: Mapping[str, Any], key: str, where: str) -> None:
        value = self.string(d, key, where)
        if value is not None and not _URL_RE.fullmatch(value.strip()):
            self.add(where, f"must be an http:// or https:// address, got {value!r}")


def _validate(d: Any, *, stem: str | None = None) -> list[tuple[str, str]]:
    c = _Checker()
    if not isinstance(d, Mapping):
        c.problems.append(("", f"the card must be a YAML mapping, got {_type_name(d)}"))
        return c.problems

    for key in d:
        if key not in _REQUIRED and key not in _OPTIONAL:
            close = difflib.get_close_matches(str(key), _REQUIRED + _OPTIONAL, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            c.add(str(key), f"is not a known card field{hint}")

    card_id = c.string(d, "id", "id")
    if card_id is not None:
        if not _ID_RE.fullmatch(card_id):
            c.add("id", f"must contain only letters, digits, '_' and '-', got {card_id!r}")
        elif stem is not None and card_id != stem:
            c.add("id", f"must equal the file name stem {stem!r}, got {card_id!r}")

    for key in _REQUIRED_STR:
        c.string(d, key, key)
    c.choice(d, "modality", "modality", MODALITIES)
    c.choice(d, "app", "app", APPS)

    source = c.mapping(d, "source", "source")
    if source is not None:
        c.url(source, "url", "source.url")

    access = c.mapping(d, "access", "access")
    if access is not None:
        method = c.choice(access, "method", "access.method", tuple(ACCESS_METHODS))
        if method is not None:
            key, what = ACCESS_METHODS[method]
            where = f"access.{key}"
            if key not in access or access[key] is None:
                c.add(where, f"is missing; method '{method}' needs {what}")
            elif method == "manual":
                steps = access[key]
                if not isinstance(steps, list) or not steps:
                    c.add(where, f"must be a non-empty list of strings, got {_type_name(steps)}")
                else:
                    for i, step in enumerate(steps):
                        if not isinstance(step, str) or not step.strip():
                            c.add(f"{where}[{i}]", f"must be a string, got {_type_name(step)}")
            elif method == "url":
                c.url(access, key, where)
            else:
                value = c.string(access, key, where)
                if method == "package" and value is not None and not _DOTTED_RE.fullmatch(value):
                    c.add(
                        where,
                        f"must be a dotted name like 'package.module.function', got {value!r}",
                    )

    labels = c.mapping(d, "labels", "labels")
    if labels is not None:
        if not labels:
            c.add("labels", "must not be empty")
        for code, name in labels.items():
            where = f"labels[{code!r}]" if isinstance(code, str) else f"labels[{code}]"
            if isinstance(code, bool) or not isinstance(code, int | str):
                c.add(where, f"key must be an integer or a string, got {_type_name(code)}")
            if not isinstance(name, str) or not name.strip():
                c.add(where, f"must be a non-empty string name, got {_type_name(name)}")

    protocol = c.mapping(d, "protocol", "protocol")
    if protocol is not None:
        c.string(protocol, "name", "protocol.name")
        if "splits" not in protocol or protocol["splits"] is None:
            c.add("protocol.splits", "is missing")
        elif isinstance(protocol["splits"], Mapping):
            if not protocol["splits"]:
                c.add("protocol.splits", "must not be empty")
        elif not isinstance(protocol["splits"], str) or not protocol["splits"].strip():
            c.add(
                "protocol.splits",
                f"must be a string or a mapping, got {_type_name(protocol['splits'])}",
            )
        c.string(protocol, "notes", "protocol.notes", required=False)

    if "reference_results" not in d:
        c.add("reference_results", "is missing (use [] when there is none)")
    elif not isinstance(d["reference_results"], list):
        c.add(
            "reference_results",
            f"must be a list (use [] when empty), got {_type_name(d['reference_results'])}",
        )
    else:
        for i, result in enumerate(d["reference_results"]):
            base = f"reference_results[{i}]"
            if not isinstance(result, Mapping):
                c.add(base, f"must be a mapping, got {_type_name(result)}")
                continue
            for key in ("method", "metric", "split", "source"):
                c.string(result, key, f"{base}.{key}")
            c.number(result, "value", f"{base}.value")
            c.number(result, "std", f"{base}.std", required=False)
            c.string(result, "notes", f"{base}.notes", required=False)

    # optional fields
    if d.get("subjects") is not None:
        value = d["subjects"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            c.add("subjects", f"must be a positive integer, got {value!r}")
    if d.get("channels") is not None:
        value = d["channels"]
        if isinstance(value, bool) or not isinstance(value, int | list):
            c.add("channels", f"must be an integer or a list, got {_type_name(value)}")
        elif isinstance(value, int) and value < 1:
            c.add("channels", f"must be positive, got {value}")
    if d.get("sampling_rate_hz") is not None:
        value = d["sampling_rate_hz"]
        if not _is_number(value) or value <= 0:
            c.add("sampling_rate_hz", f"must be a positive number, got {value!r}")
    if d.get("spacing_mm") is not None:
        value = d["spacing_mm"]
        if not isinstance(value, list) or not all(_is_number(v) and v > 0 for v in value):
            c.add("spacing_mm", f"must be a list of positive numbers, got {value!r}")
    c.string(d, "notes", "notes", required=False)
    return c.problems


def validate_card_dict(d: Any, *, stem: str | None = None) -> list[str]:
    """Check a parsed card against the schema.

    Parameters
    ----------
    d : Any
        The parsed YAML (should be a mapping).
    stem : str, optional
        The card file's stem; when given, ``id`` must equal it.

    Returns
    -------
    list of str
        Every problem found, each naming its field path (e.g.
        ``"field 'reference_results[0].value' must be a number, got a string 'high'"``);
        empty when the card is valid.
    """
    return [message for _, message in _validate(d, stem=stem)]


def _card_error(
    problems: list[tuple[str, str]], path: str | os.PathLike[str] | None
) -> DataCardError:
    first_field, first_message = problems[0]
    if len(problems) == 1:
        problem = first_message
        if first_message.endswith("is missing"):
            fix = f"add a '{first_field}:' entry"
        else:
            fix = f"correct '{first_field}' (the schema is described in medcl.io.cards)"
    else:
        problem = f"{len(problems)} problems: " + "; ".join(m for _, m in problems)
        fix = "correct the fields listed (the schema is described in medcl.io.cards)"
    return DataCardError(problem, path=path, fix=fix, field=first_field or None)


# -- files --------------------------------------------------------------------------------------
def load_card(path: str | os.PathLike[str]) -> DataCard:
    """Read and validate one card file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.yaml`` card.

    Returns
    -------
    DataCard

    Raises
    ------
    DataCardError
        If the file is missing, is not valid YAML or fails the schema; the message lists every
        problem and :attr:`DataCardError.field` names the first offending field.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise DataCardError(
            "data card file not found",
            path=path,
            fix="check the path, or run `medcl cards list` to see the known cards",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise DataCardError(
            f"cannot read the data card ({exc})", path=path, fix="check the file's permissions"
        ) from exc
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        reason = getattr(exc, "problem", None) or type(exc).__name__
        raise DataCardError(
            f"the card is not valid YAML{where}: {reason}",
            path=path,
            fix="correct the YAML syntax (indentation, quoting of ':' in values)",
        ) from exc
    return DataCard.from_dict(data, path=path)


def cards_dir() -> Path:
    """The folder holding the data cards.

    Returns
    -------
    pathlib.Path
        ``$MEDCL_CARDS_DIR`` when set, otherwise the cards a wheel install ships inside
        ``medcl.io``, otherwise (an editable install) the repository's ``data_cards/`` folder.
    """
    env = os.environ.get("MEDCL_CARDS_DIR")
    if env:
        return Path(env).expanduser()
    shipped = Path(__file__).resolve().parent / "data_cards"
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parents[2] / "data_cards"


def _card_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataCardError(
            "data card folder not found",
            path=folder,
            fix="set MEDCL_CARDS_DIR to the folder holding the <id>.yaml cards",
        )
    return sorted(p for p in folder.iterdir() if p.suffix in _CARD_SUFFIXES and p.is_file())


def list_cards(folder: str | os.PathLike[str] | None = None) -> list[DataCard]:
    """Load every card in ``folder`` (default :func:`cards_dir`), sorted by id.

    Raises
    ------
    DataCardError
        If the folder is missing or a card in it is invalid.
    """
    root = Path(folder) if folder is not None else cards_dir()
    return sorted((load_card(p) for p in _card_files(root)), key=lambda card: card.id)


def get_card(card_id: str, folder: str | os.PathLike[str] | None = None) -> DataCard:
    """Load the card with the given id from ``folder`` (default :func:`cards_dir`).

    Raises
    ------
    DataCardError
        If no card has this id (the message lists the known ids) or the card is invalid.
    """
    root = Path(folder) if folder is not None else cards_dir()
    files = _card_files(root)
    for p in files:
        if p.stem == card_id:
            return load_card(p)
    known = [p.stem for p in files]
    close = [k for k in known if k.lower().startswith(card_id.lower())] if card_id else []
    close = close or difflib.get_close_matches(card_id, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise DataCardError(
        f"unknown data card {card_id!r}{hint}; known cards: {', '.join(known) or 'none'}",
        path=root,
        fix="use one of the known ids (`medcl cards list`)",
    )

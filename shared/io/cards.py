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
    mapping with ``name`` (str), ``splits`` (str or mapping) and optional ``notes`` (str); an
    app may keep its per-dataset settings here: ``sessions`` (MVCNet: protocol ``co``, ``cv``,
    ``loso`` or ``t2e`` -> ``'all'`` or comma-separated MOABB session names, each optionally
    ``NAME:N`` for its first N trials per subject) and ``sepclr`` (SepCLR: ``loss_weights``
    with ``common``, ``salient``, ``regulariser``, ``mi``; optional ``augment``,
    ``probe_metric``, ``pretrained``; see :mod:`medcl.sepclr.cards`).
``reference_results``
    list (may be empty) of mappings with ``method``, ``metric``, ``split``, ``source`` (str),
    ``value`` (number), optional ``std`` (number) and ``notes`` (str).

Optional fields: ``subjects`` (int), ``channels`` (int or list), ``sampling_rate_hz`` (number),
``spacing_mm`` (list of numbers), ``notes`` (str).

The schema is written once, as the JSON Schema :data:`CARD_SCHEMA` (draft 2020-12), and checked
with :mod:`jsonschema`; the one rule a schema cannot state (``id`` equals the file stem) is a small
function beside it. Validation collects every problem, each naming its field path as users write
it (``reference_results[0].source``, ``labels[769]``) and what the value must be.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import DataCardError

__all__ = [
    "ACCESS_METHODS",
    "APPS",
    "CARD_SCHEMA",
    "MODALITIES",
    "DataCard",
    "cards_dir",
    "get_card",
    "list_cards",
    "load_card",
    "validate_card_dict",
]

MODALITIES: tuple[str, ...] = (
    "ct", "mr", "mri", "eeg", "image", "x-ray", "fundus", "multi",
    "graph", "point-cloud", "text-image", "skeleton", "interactions",
)
APPS: tuple[str, ...] = ("dbsam", "pirads", "mvcnet", "sepclr", "core")
ACCESS_METHODS: dict[str, tuple[str, str]] = {
    # method -> (required key, what it must be)
    "moabb": ("moabb_id", "the MOABB dataset class name, e.g. 'BNCI2014_001'"),
    "manual": ("steps", "a list of instructions (strings)"),
    "package": ("loader", "a dotted loader name, e.g. 'sklearn.datasets.load_digits'"),
    "url": ("url", "an http(s) download address"),
}

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


# -- schema -------------------------------------------------------------------------------------
# Beside the JSON Schema keywords, a sub-schema may carry two annotations of ours, which
# validators ignore: ``x-expect`` (what a valid value is, for messages "must be <x-expect>, got
# ...") and ``x-missing`` (a hint appended to "is missing" when the property is left out).
_TEXT = {"type": "string", "pattern": r"\S"}
_OPTIONAL_TEXT = {"type": ["string", "null"], "pattern": r"\S"}
_NUMBER = {"type": "number"}
_URL = {
    "type": "string",
    "pattern": r"^\s*https?://\S+\s*$",
    "x-expect": "an http:// or https:// address",
}


def _access_rule(method: str, schema: dict[str, Any]) -> dict[str, Any]:
    """If ``access.method`` is ``method``, its key (:data:`ACCESS_METHODS`) is required and
    matches ``schema``."""
    key, what = ACCESS_METHODS[method]
    return {
        "if": {"required": ["method"], "properties": {"method": {"const": method}}},
        "then": {
            "required": [key],
            "properties": {key: {**schema, "x-missing": f"method '{method}' needs {what}"}},
        },
    }


_SESSION_SELECTION = r"[^\s:,]+(:[1-9][0-9]*)?"
_SESSIONS: dict[str, Any] = {
    # MVCNet (medcl.mvcnet.config): which recordings each protocol uses, as the authors did
    "type": "object",
    "propertyNames": {"enum": ["co", "cv", "loso", "t2e"],
                      "x-expect": "a protocol: co, cv, loso or t2e"},
    "additionalProperties": {
        "type": "string",
        "pattern": rf"^\s*(all|{_SESSION_SELECTION}(\s*,\s*{_SESSION_SELECTION})*)\s*$",
        "x-expect": "'all' or comma-separated MOABB session names, each optionally NAME:N "
                    "(its first N trials per subject)",
    },
    "x-expect": "a mapping from protocol (co, cv, loso, t2e) to a session selection",
}
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1, "x-expect": "a number in [0, 1]"}
_SEPCLR: dict[str, Any] = {
    # SepCLR (medcl.sepclr.cards): the authors' per-dataset loss weights, augmentations, probe
    "type": "object",
    "required": ["loss_weights"],
    "additionalProperties": False,
    "properties": {
        "loss_weights": {
            "type": "object",
            "required": ["common", "salient", "regulariser", "mi"],
            "additionalProperties": False,
            "properties": {k: {"type": "number", "minimum": 0,
                               "x-expect": "a non-negative number"}
                           for k in ("common", "salient", "regulariser", "mi")},
        },
        "augment": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "crop_scale": {"type": "array", "minItems": 2, "maxItems": 2,
                               "items": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
                               "x-expect": "two numbers in (0, 1]"},
                "crop_size": {"type": "integer", "minimum": 8,
                              "x-expect": "an integer >= 8"},
                "hflip": _FRACTION,
                "vflip": _FRACTION,
                "rotation": {"type": "number", "minimum": 0,
                             "x-expect": "a non-negative number of degrees"},
                "jitter": {"type": "array", "minItems": 4, "maxItems": 4,
                           "items": {"type": "number", "minimum": 0},
                           "x-expect": "four non-negative numbers (brightness, contrast, "
                                       "saturation, hue)"},
                "jitter_p": _FRACTION,
                "grayscale_p": _FRACTION,
            },
        },
        "probe_metric": {"enum": ["accuracy", "balanced_accuracy"]},
        "pretrained": {"enum": ["imagenet", "none"]},
        "notes": _OPTIONAL_TEXT,
    },
}


CARD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "medcl data card",
    "description": "One public dataset: what it is, how to get it, how medcl evaluates on it.",
    "type": "object",
    # keyword order is the order of the reported problems: unknown fields, missing ones, then
    # each field in turn
    "additionalProperties": False,
    "required": list(_REQUIRED),
    "properties": {
        "id": {
            "type": "string",
            "pattern": r"^[A-Za-z0-9_\-]+$",
            "x-expect": "made of letters, digits, '_' and '-' only",
        },
        "title": _TEXT,
        "task": _TEXT,
        "licence": _TEXT,
        "citation": _TEXT,
        "format": _TEXT,
        "layout": _TEXT,
        "modality": {"enum": list(MODALITIES)},
        "app": {"enum": list(APPS)},
        "source": {"type": "object", "required": ["url"], "properties": {"url": _URL}},
        "access": {
            "type": "object",
            "required": ["method"],
            "properties": {"method": {"enum": list(ACCESS_METHODS)}},
            "allOf": [
                _access_rule("moabb", _TEXT),
                _access_rule(
                    "manual",
                    {
                        "type": "array",
                        "minItems": 1,
                        "items": _TEXT,
                        "x-expect": "a non-empty list of strings",
                    },
                ),
                _access_rule(
                    "package",
                    {
                        "type": "string",
                        "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
                        "x-expect": "a dotted name like 'package.module.function'",
                    },
                ),
                _access_rule("url", _URL),
            ],
        },
        "labels": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"type": ["integer", "string"]},
            "additionalProperties": {**_TEXT, "x-expect": "a non-empty string name"},
        },
        "protocol": {
            "type": "object",
            "required": ["name", "splits"],
            "properties": {
                "name": _TEXT,
                "splits": {"type": ["string", "object"], "pattern": r"\S", "minProperties": 1},
                "notes": _OPTIONAL_TEXT,
                "sessions": _SESSIONS,
                "sepclr": _SEPCLR,
            },
        },
        "reference_results": {
            "type": "array",
            "x-expect": "a list (use [] when empty)",
            "x-missing": "use [] when there is none",
            "items": {
                "type": "object",
                "required": ["method", "metric", "split", "source", "value"],
                "properties": {
                    "method": _TEXT,
                    "metric": _TEXT,
                    "split": _TEXT,
                    "source": _TEXT,
                    "value": _NUMBER,
                    "std": {"type": ["number", "null"]},
                    "notes": _OPTIONAL_TEXT,
                },
            },
        },
        "subjects": {"type": ["integer", "null"], "minimum": 1, "x-expect": "a positive integer"},
        "channels": {
            "type": ["integer", "array", "null"],
            "minimum": 1,
            "x-expect": "a positive integer or a list of channel names",
        },
        "sampling_rate_hz": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "x-expect": "a positive number",
        },
        "spacing_mm": {
            "type": ["array", "null"],
            "items": {"type": "number", "exclusiveMinimum": 0, "x-expect": "a positive number"},
            "x-expect": "a list of positive numbers",
        },
        "notes": _OPTIONAL_TEXT,
    },
}
"""The data-card schema (JSON Schema, draft 2020-12), as described in the module docstring.

Validated with :mod:`jsonschema` by :func:`validate_card_dict`, which adds the one check a
schema cannot express (``id`` equals the file name stem) and words each problem as
``field '<path>' ...``.
"""


# -- validation ---------------------------------------------------------------------------------
_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "object": "a mapping",
    "array": "a list",
    "boolean": "a boolean",
}
_KEYED_MAPPINGS = frozenset({"labels"})
"""Mappings whose keys are data (label codes), shown as ``labels[769]`` in field paths."""


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


def _shown(value: Any) -> str:
    """``"a string 'high'"``, ``"an integer 12"``, ``"a list"``: what a wrong value is."""
    if isinstance(value, bool | int | float | str) and len(repr(value)) <= 60:
        return f"{_type_name(value)} {value!r}"
    return _type_name(value)


@functools.cache
def _schema_validator() -> Any:
    """A draft 2020-12 validator of :data:`CARD_SCHEMA`, built once.

    Two types are read as Python sees YAML: ``integer`` excludes booleans and integral floats
    (``subjects: 9.0`` is refused, as ``True`` is), ``object`` is any mapping.
    """
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine_many(
        {
            "integer": lambda _, v: isinstance(v, int) and not isinstance(v, bool),
            "object": lambda _, v: isinstance(v, Mapping),
        }
    )
    return validators.extend(Draft202012Validator, type_checker=checker)(CARD_SCHEMA)


def _field_path(root: Any, path: Sequence[Any]) -> str:
    """The path of a value inside the card as users write it: ``reference_results[0].value``,
    ``access.steps[1]``, ``labels[769]``, ``labels['tumour']``."""
    text, node = "", root
    for key in path:
        if isinstance(node, list):
            text += f"[{key}]"
        elif text in _KEYED_MAPPINGS:
            text += f"[{key!r}]" if isinstance(key, str) else f"[{key}]"
        else:
            text = f"{text}.{key}" if text else str(key)
        node = node[key]
    return text


def _child(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _expected(schema: Mapping[str, Any]) -> str:
    """What a value of ``schema`` must be, in words (``x-expect`` or from its ``type``)."""
    if "x-expect" in schema:
        return str(schema["x-expect"])
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    return " or ".join(_TYPE_NAMES.get(t, t) for t in types if t != "null") or "valid"


def _missing(error: Any, where: str) -> list[tuple[str, str]]:
    """``required``: one problem per property left out, with the property's ``x-missing`` hint."""
    properties = error.schema.get("properties", {})
    problems = []
    for key in error.validator_value:
        if key not in error.instance:
            hint = properties.get(key, {}).get("x-missing")
            problems.append((_child(where, key), "is missing" + (f"; {hint}" if hint else "")))
    return problems


def _unknown(error: Any, where: str) -> list[tuple[str, str]]:
    """``additionalProperties: false``: one problem per unknown field, with a spelling hint."""
    known = list(error.schema.get("properties", {}))
    problems = []
    for key in error.instance:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append((_child(where, key), f"is not a known card field{hint}"))
    return problems


def _problems(error: Any, root: Any) -> list[tuple[str, str]]:
    """Word one :class:`jsonschema.ValidationError` as ``(field, message)`` problems."""
    where = _field_path(root, error.absolute_path)
    kind, value = error.validator, error.instance
    if kind == "required":
        return _missing(error, where)
    if kind == "additionalProperties" and error.validator_value is False:
        return _unknown(error, where)
    if "propertyNames" in error.schema_path:  # a key of a mapping, e.g. a label code
        key = f"{where}[{value!r}]"
        return [(key, f"key must be {_expected(error.schema)}, got {_type_name(value)}")]
    if value is None or (kind == "pattern" and isinstance(value, str) and not value.strip()):
        message = "is empty"
    elif kind in ("minItems", "minProperties") and not value:
        message = "must not be empty"
    elif kind == "enum":
        options = ", ".join(map(str, error.validator_value))
        message = f"must be one of {options}; got {value!r}"
    elif kind == "type":
        message = f"must be {_expected(error.schema)}, got {_shown(value)}"
    else:
        message = f"must be {_expected(error.schema)}, got {value!r}"
    return [(where, message)]


def _check_id_matches_stem(d: Mapping[str, Any], stem: str | None) -> list[tuple[str, str]]:
    """The one cross-field rule a schema cannot state: ``id`` equals the card file's stem."""
    card_id = d.get("id")
    if stem is None or not isinstance(card_id, str) or card_id == stem:
        return []
    if not re.fullmatch(CARD_SCHEMA["properties"]["id"]["pattern"], card_id):
        return []  # already reported by the schema
    return [("id", f"must equal the file name stem {stem!r}, got {card_id!r}")]


def _validate(d: Any, *, stem: str | None = None) -> list[tuple[str, str]]:
    """Every ``(field, "field '<field>' <message>")`` problem of a parsed card, in schema order:
    unknown fields, missing fields, then each field's value."""
    if not isinstance(d, Mapping):
        return [("", f"the card must be a YAML mapping, got {_type_name(d)}")]
    found: list[tuple[str, str]] = []
    for error in _schema_validator().iter_errors(d):
        found.extend(_problems(error, d))
    found.extend(_check_id_matches_stem(d, stem))
    unique = dict.fromkeys(found)  # one 'required' error per missing key lists them all
    return [(where, f"field '{where}' {message}") for where, message in unique]


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

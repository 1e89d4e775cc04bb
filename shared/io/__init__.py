"""medcl.io: what the medcl apps share about the world outside.

Errors that name the file and the fix (:mod:`medcl.io.errors`), atomic file writing
(:mod:`medcl.io.atomic`), run folders (:mod:`medcl.io.runs`) and data cards (:mod:`medcl.io.cards`).

Importing this package is cheap: torch, pandas and matplotlib are imported only inside the
functions that need them.
"""

from __future__ import annotations

from .atomic import (
    atomic_path,
    refuse_overwrite,
    save_figure,
    save_torch,
    to_plain,
    write_bytes,
    write_csv,
    write_text,
    write_yaml,
)
from .cards import DataCard, cards_dir, get_card, list_cards, load_card, validate_card_dict
from .errors import (
    ConfigError,
    DataCardError,
    InputFileError,
    MedclError,
    RunFolderError,
)
from .runs import RunFolder, library_versions, to_markdown_table

__all__ = [
    "ConfigError",
    "DataCard",
    "DataCardError",
    "InputFileError",
    "MedclError",
    "RunFolder",
    "RunFolderError",
    "atomic_path",
    "cards_dir",
    "get_card",
    "library_versions",
    "list_cards",
    "load_card",
    "refuse_overwrite",
    "save_figure",
    "save_torch",
    "to_markdown_table",
    "to_plain",
    "validate_card_dict",
    "write_bytes",
    "write_csv",
    "write_text",
    "write_yaml",
]

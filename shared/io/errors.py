"""User-facing errors of medcl.

Every error a user can cause (a missing file, a malformed data card, a run folder in the way,
a bad configuration value) is raised as a :class:`MedclError`. Its message names the problem,
the file it concerns and, where one is known, the fix. The command-line interface prints
``str(error)`` without a traceback and exits with :attr:`MedclError.exit_code`.
"""

from __future__ import annotations

import os

__all__ = [
    "ConfigError",
    "DataCardError",
    "InputFileError",
    "MedclError",
    "RunFolderError",
]


class MedclError(Exception):
    """Base class of the errors a user can fix.

    Parameters
    ----------
    problem : str
        What is wrong, as one sentence without a trailing full stop.
    path : str or os.PathLike, optional
        The file or folder concerned; printed before the problem.
    fix : str, optional
        What the user should do; printed after ``Fix:``.

    Examples
    --------
    >>> str(MedclError("field 'licence' is missing", path="cards/x.yaml",
    ...                fix="add a 'licence:' entry"))
    "cards/x.yaml: field 'licence' is missing. Fix: add a 'licence:' entry"
    """

    exit_code: int = 2
    """Exit status of the command-line interface when this error stops a command."""

    def __init__(
        self,
        problem: str,
        *,
        path: str | os.PathLike[str] | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = path
        self.fix = fix
        super().__init__(self._message())

    def _message(self) -> str:
        text = self.problem
        if self.path is not None:
            text = f"{os.fspath(self.path)}: {text}"
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return text

    def __str__(self) -> str:
        return self._message()

    def __reduce__(self):  # keep keyword-only arguments through pickling (multiprocessing)
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[MedclError], state: dict) -> MedclError:
    err = cls.__new__(cls)
    Exception.__init__(err)
    err.__dict__.update(state)
    err.args = (err._message(),)
    return err


class InputFileError(MedclError):
    """An input file is missing, unreadable or not in the expected format."""


class DataCardError(MedclError):
    """A data card is missing, unknown or fails its schema.

    Parameters
    ----------
    problem : str
        What is wrong; it names the field concerned.
    path : str or os.PathLike, optional
        The card file.
    fix : str, optional
        What the user should do.
    field : str, optional
        Path of the (first) offending field, e.g. ``"reference_results[0].source"``.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | os.PathLike[str] | None = None,
        fix: str | None = None,
        field: str | None = None,
    ) -> None:
        self.field = field
        super().__init__(problem, path=path, fix=fix)


class RunFolderError(MedclError):
    """A run folder or one of its files (config, model, metrics) is missing or damaged."""


class ConfigError(MedclError):
    """A configuration value (CLI flag or config file entry) is invalid."""

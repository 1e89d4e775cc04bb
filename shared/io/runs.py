"""Run folders: where one training or evaluation run keeps its config, model, metrics and report.

A run folder has a fixed layout::

    <root>/
        config.yaml     resolved configuration, seed, library versions, creation time
        metrics.csv     the per-epoch training log: one row per epoch (loss, lr, ...)
        model.pt        final weights (a state dict, loaded with ``weights_only=True``)
        report.md       human-readable summary (Markdown tables, links to figures)
        checkpoints/    training checkpoints (resume)
        <name>.csv      further tables (evaluations have their own names, e.g.
                        ``cases.csv``, ``splits.csv``), <name>.png figures

``metrics.csv`` always means the training log; a table of evaluation results is never called
``metrics.csv`` (write it with :meth:`RunFolder.write_table`). Every file is written atomically
through :mod:`medcl.io.atomic`.
"""

from __future__ import annotations

import math
import numbers
import os
import platform
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import atomic
from .errors import ConfigError, RunFolderError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ["RunFolder", "library_versions", "to_markdown_table"]

NOT_INSTALLED = "not installed"

# key in the record -> distribution name on PyPI
_DISTRIBUTIONS: dict[str, str] = {
    "medcl": "medcl",
    "torch": "torch",
    "numpy": "numpy",
    "monai": "monai",
    "mne": "mne",
    "lightning": "lightning",
    "segment_anything": "segment-anything",
    "braindecode": "braindecode",
    "moabb": "moabb",
    "sklearn": "scikit-learn",
}

_RESERVED_KEYS = ("config", "seed", "versions", "created")


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a result depends on.

    Versions are read from installed package metadata (:mod:`importlib.metadata`); no library is
    imported, so this is cheap.

    Returns
    -------
    dict of str to str
        Keys ``python, medcl, torch, numpy, monai, mne, lightning, segment_anything,
        braindecode, moabb, sklearn``; a package that is not installed maps to
        ``"not installed"``.
    """
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for key, dist in _DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = NOT_INSTALLED
    return versions


def _format_cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return ""
        return format(value, floatfmt)
    text = str(value)
    if text in ("nan", "NaT", "<NA>", "None"):
        return ""
    return text.replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def to_markdown_table(df: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """Render a DataFrame as a Markdown pipe table.

    Parameters
    ----------
    df : pandas.DataFrame
        The table. Its index is shown as the first column when it is named or is not the
        default ``0..n-1`` range.
    floatfmt : str, default ".3f"
        Format specification for real numbers; missing values render as empty cells.

    Returns
    -------
    str
        The table, one line per row, ending with a newline. Numeric columns are right-aligned.

    Examples
    --------
    >>> import pandas as pd
    >>> print(to_markdown_table(pd.DataFrame({"method": ["knn"], "acc": [0.91234]})), end="")
    | method |   acc |
    | ------ | ----: |
    | knn    | 0.912 |
    """
    import pandas as pd

    index = df.index
    default_index = (
        isinstance(index, pd.RangeIndex)
        and index.name is None
        and index.start == 0
        and index.step == 1
    )
    table = df if default_index else df.reset_index()

    headers = [_format_cell(c, floatfmt) if not isinstance(c, str) else c for c in table.columns]
    headers = [h.replace("|", "\\|") for h in headers]
    numeric = [
        pd.api.types.is_numeric_dtype(table.iloc[:, j])
        and not pd.api.types.is_bool_dtype(table.iloc[:, j])
        for j in range(table.shape[1])
    ]
    rows = [
        [_format_cell(v, floatfmt) for v in row] for row in table.itertuples(index=False, name=None)
    ]
    widths = [max([3, len(headers[j])] + [len(r[j]) for r in rows]) for j in range(len(headers))]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if num else c.ljust(w)
            for c, w, num in zip(cells, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if num else "-" * w for w, num in zip(widths, numeric, strict=True)]
    lines = [line(headers), "| " + " | ".join(rule) + " |"]
    lines += [line(r) for r in rows]
    return "\n".join(lines) + "\n"


def _check_name(name: str, suffix: str) -> str:
    if name.endswith(suffix):
        name = name[: -len(suffix)]
    if not name or name in (".", "..") or "/" in name or os.sep in name:
        raise ConfigError(
            f"{name!r} is not a valid file name inside a run folder",
            fix="use a plain name without folders, e.g. 'probe_results'",
        )
    return name + suffix


@dataclass(frozen=True)
class RunFolder:
    """One run's folder: its config, model, metrics, tables, figures and report.

    Parameters
    ----------
    root : pathlib.Path
        The folder. Use :meth:`create` to make sure it exists.

    Examples
    --------
    >>> run = RunFolder.create("runs/demo")  # doctest: +SKIP
    >>> run.write_config(cfg, seed=0)  # doctest: +SKIP
    >>> run.save_model(model.state_dict())  # doctest: +SKIP
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def create(cls, path: str | os.PathLike[str], *, overwrite: bool = False) -> RunFolder:
        """Create (or reuse) a run folder.

        An existing folder is reused so that a run can be resumed from its checkpoints.

        Parameters
        ----------
        path : str or os.PathLike
            The folder; parents are created.
        overwrite : bool, default False
            Start afresh: remove the standard run files (``config.yaml``, ``metrics.csv``,
            ``model.pt``, ``report.md``) and the ``checkpoints/`` folder of an existing run.
            Other files in the folder are left alone.

        Returns
        -------
        RunFolder

        Raises
        ------
        RunFolderError
            If ``path`` exists and is not a folder, or cannot be created.
        """
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise RunFolderError(
                "exists and is a file, not a run folder",
                path=root,
                fix="choose another output folder or remove the file",
            )
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(
                f"cannot create the run folder ({exc.strerror or exc})",
                path=root,
                fix="choose a writable output folder",
            ) from exc
        run = cls(root)
        if overwrite:
            for file in (run.config_path, run.metrics_path, run.model_path, run.report_path):
                file.unlink(missing_ok=True)
            if run.checkpoint_dir.is_dir():
                shutil.rmtree(run.checkpoint_dir)
        return run

    # -- layout -----------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        """``config.yaml``: resolved config, seed, versions, creation time."""
        return self.root / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        """``metrics.csv``: the per-epoch training log (one row per epoch)."""
        return self.root / "metrics.csv"

    @property
    def model_path(self) -> Path:
        """``model.pt``: the final state dict."""
        return self.root / "model.pt"

    @property
    def report_path(self) -> Path:
        """``report.md``: the human-readable summary."""
        return self.root / "report.md"

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoints/``: training checkpoints for resuming (not created here)."""
        return self.root / "checkpoints"

    # -- config -----------------------------------------------------------------------------
    def write_config(
        self,
        config: Any,
        *,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write ``config.yaml`` with the config, seed, library versions and creation time.

        Parameters
        ----------
        config : dataclass instance or dict
            The resolved configuration (paper defaults overridden by CLI flags).
        seed : int, optional
            The seed all randomness of the run derives from.
        extra : dict, optional
            Further top-level entries (e.g. ``{"command": "medcl mvcnet train ..."}``); they may
            not reuse the keys ``config, seed, versions, created``.

        Returns
        -------
        pathlib.Path
            The path of ``config.yaml``.
        """
        record: dict[str, Any] = {
            "config": atomic.to_plain(config),
            "seed": seed,
            "versions": library_versions(),
            "created": datetime.now(UTC).astimezone().isoformat(timespec="seconds"),
        }
        for key, value in (extra or {}).items():
            if key in _RESERVED_KEYS:
                raise ConfigError(
                    f"extra entry {key!r} would replace a reserved key of config.yaml",
                    path=self.config_path,
                    fix=f"rename it; reserved keys are {', '.join(_RESERVED_KEYS)}",
                )
            record[key] = value
        return atomic.write_yaml(self.config_path, record)

    def read_config(self) -> dict[str, Any]:
        """Read ``config.yaml`` back as a dict (keys ``config, seed, versions, created``, ...).

        Raises
        ------
        RunFolderError
            If the file is missing or is not a YAML mapping.
        """
        import yaml

        path = self.config_path
        if not path.is_file():
            raise RunFolderError(
                "config.yaml is missing",
                path=path,
                fix="point to a run folder written by a medcl command",
            )
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise RunFolderError(
                f"cannot read config.yaml ({type(exc).__name__})",
                path=path,
                fix="repair or delete the file and rerun the command",
            ) from exc
        if not isinstance(data, dict):
            raise RunFolderError(
                "config.yaml is not a mapping",
                path=path,
                fix="repair or delete the file and rerun the command",
            )
        return data

    # -- model ------------------------------------------------------------------------------
    def save_model(self, state_dict: Any) -> Path:
        """Save the final weights to ``model.pt`` (atomic :func:`torch.save`)."""
        return atomic.save_torch(self.model_path, state_dict)

    def load_model(self, map_location: Any = "cpu") -> dict[str, Any]:
        """Load ``model.pt`` with ``torch.load(..., weights_only=True)``.

        Parameters
        ----------
        map_location : str or torch.device, default "cpu"
            Passed to :func:`torch.load`.

        Returns
        -------
        dict
            The saved state dict.

        Raises
        ------
        RunFolderError
            If ``model.pt`` is missing, damaged or not a weights-only file.
        """
        path = self.model_path
        if not path.is_file():
            raise RunFolderError(
                "model.pt is missing",
                path=path,
                fix="train a model into this run folder first, or point to the run folder "
                "that holds model.pt",
            )
        import torch

        try:
            state = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as exc:  # torch raises many types for damaged files
            raise RunFolderError(
                f"model.pt cannot be loaded; it is damaged or not a weights-only state dict "
                f"({type(exc).__name__})",
                path=path,
                fix="retrain the model into this run folder or restore model.pt",
            ) from exc
        return state

    # -- tables, figures, report ------------------------------------------------------------
    def write_metrics(self, rows: list[dict[str, Any]] | pd.DataFrame) -> Path:
        """Write ``metrics.csv``, the per-epoch training log, from row dicts or a DataFrame.

        Parameters
        ----------
        rows : list of dict or pandas.DataFrame
            One row per training epoch (e.g. ``epoch``, ``loss``, ``lr``). Evaluation results
            go to their own table (:meth:`write_table`, e.g. ``cases``), not here.

        Returns
        -------
        pathlib.Path
            The path of ``metrics.csv``.
        """
        import pandas as pd

        df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
        return atomic.write_csv(self.metrics_path, df, index=False)

    def read_metrics(self) -> pd.DataFrame:
        """Read ``metrics.csv``, the per-epoch training log, back as a DataFrame.

        Raises
        ------
        RunFolderError
            If the file is missing.
        """
        import pandas as pd

        if not self.metrics_path.is_file():
            raise RunFolderError(
                "metrics.csv is missing",
                path=self.metrics_path,
                fix="train a model into this folder first (metrics.csv is the training log)",
            )
        return pd.read_csv(self.metrics_path)

    def write_report(self, markdown: str) -> Path:
        """Write ``report.md``."""
        if not markdown.endswith("\n"):
            markdown += "\n"
        return atomic.write_text(self.report_path, markdown)

    def write_table(self, name: str, df: pd.DataFrame, floatfmt: str = ".3f") -> str:
        """Write ``<name>.csv`` and return the table rendered as Markdown.

        Parameters
        ----------
        name : str
            File name without folders; ``.csv`` is appended unless present.
        df : pandas.DataFrame
            The table; its index is written only when it is meaningful (see
            :func:`to_markdown_table`).
        floatfmt : str, default ".3f"
            Number format of the Markdown rendering (the CSV keeps full precision).

        Returns
        -------
        str
            The Markdown pipe table, ready to paste into :meth:`write_report`.
        """
        import pandas as pd

        file = self.root / _check_name(name, ".csv")
        index = df.index
        keep_index = not (
            isinstance(index, pd.RangeIndex)
            and index.name is None
            and index.start == 0
            and index.step == 1
        )
        atomic.write_csv(file, df, index=keep_index)
        return to_markdown_table(df, floatfmt=floatfmt)

    def save_figure(self, name: str, fig: Figure, dpi: int = 120) -> Path:
        """Save a matplotlib figure as ``<name>.png`` (the figure is not closed)."""
        return atomic.save_figure(self.root / _check_name(name, ".png"), fig, dpi=dpi)

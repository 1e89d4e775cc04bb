"""Tests of medcl.io.errors: messages name the file and the fix."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from medcl.io.errors import (
    ConfigError,
    DataCardError,
    InputFileError,
    MedclError,
    RunFolderError,
)


def test_message_with_path_and_fix() -> None:
    err = MedclError(
        "field 'licence' is missing", path="cards/x.yaml", fix="add a 'licence:' entry"
    )
    assert str(err) == "cards/x.yaml: field 'licence' is missing. Fix: add a 'licence:' entry"
    assert err.problem == "field 'licence' is missing"
    assert err.path == "cards/x.yaml"
    assert err.fix == "add a 'licence:' entry"


def test_message_without_path_or_fix() -> None:
    assert str(MedclError("something broke")) == "something broke"
    assert str(MedclError("bad", fix="do X")) == "bad. Fix: do X"
    assert str(MedclError("bad", path=Path("a") / "b.nii")) == f"{Path('a/b.nii')}: bad"


def test_trailing_full_stop_is_not_doubled() -> None:
    assert str(MedclError("bad.", fix="do X")) == "bad. Fix: do X"


def test_exit_code_and_hierarchy() -> None:
    assert MedclError.exit_code == 2
    for cls in (InputFileError, DataCardError, RunFolderError, ConfigError):
        assert issubclass(cls, MedclError)
        assert cls.exit_code == 2
        with pytest.raises(MedclError, match="oops"):
            raise cls("oops")


def test_datacard_error_field() -> None:
    err = DataCardError("field 'access.method' is missing", path="c.yaml", field="access.method")
    assert err.field == "access.method"
    assert "access.method" in str(err)
    assert DataCardError("x").field is None


def test_pickle_round_trip() -> None:
    err = DataCardError("p", path="f.yaml", fix="f", field="licence")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is DataCardError
    assert str(back) == str(err)
    assert back.field == "licence"
    assert back.fix == "f"

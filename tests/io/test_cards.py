"""Tests of medcl.io.cards and of the ``medcl cards`` sub-app."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from medcl.cards import app
from medcl.io.cards import (
    CARD_SCHEMA,
    DataCard,
    cards_dir,
    get_card,
    list_cards,
    load_card,
    validate_card_dict,
)
from medcl.io.errors import DataCardError, MedclError

REPO_CARDS = Path(__file__).resolve().parents[2] / "data_cards"
SHIPPED = sorted(REPO_CARDS.glob("*.yaml"))


@pytest.fixture(autouse=True)
def _no_cards_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDCL_CARDS_DIR", raising=False)


@pytest.fixture
def bnci() -> dict[str, Any]:
    return yaml.safe_load((REPO_CARDS / "bnci2014_001.yaml").read_text())


def _write(folder: Path, data: Any, stem: str | None = None) -> Path:
    stem = stem or data["id"]
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error_for(tmp_path: Path, data: Any, stem: str | None = None) -> DataCardError:
    with pytest.raises(DataCardError) as info:
        load_card(_write(tmp_path, data, stem))
    return info.value


# -- the shipped cards ----------------------------------------------------------------------
def test_default_folder_is_the_repository_folder() -> None:
    assert cards_dir() == REPO_CARDS
    assert {p.stem for p in SHIPPED} >= {"sklearn_digits", "bnci2014_001"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_card_validates(path: Path) -> None:
    data = yaml.safe_load(path.read_text())
    assert validate_card_dict(data, stem=path.stem) == []
    card = load_card(path)
    assert card.id == path.stem
    assert card.path == path


def test_shipped_card_facts() -> None:
    digits = get_card("sklearn_digits")
    assert digits.access == {"method": "package", "loader": "sklearn.datasets.load_digits"}
    assert len(digits.labels) == 10
    bnci = get_card("bnci2014_001")
    assert bnci.moabb_id == "BNCI2014_001"
    assert bnci.access_method == "moabb"
    assert bnci.subjects == 9
    assert bnci.sampling_rate_hz == 250
    assert isinstance(bnci.channels, list) and len(bnci.channels) == 22
    assert bnci.labels == {769: "left_hand", 770: "right_hand", 771: "feet", 772: "tongue"}


# -- schema failures ------------------------------------------------------------------------
def test_valid_dict_has_no_problems(bnci: dict[str, Any]) -> None:
    assert validate_card_dict(bnci) == []
    assert validate_card_dict(bnci, stem="bnci2014_001") == []


def test_missing_licence(tmp_path: Path, bnci: dict[str, Any]) -> None:
    del bnci["licence"]
    err = _error_for(tmp_path, bnci)
    assert err.field == "licence"
    assert "field 'licence' is missing" in str(err)
    assert "Fix: add a 'licence:' entry" in str(err)
    assert str(tmp_path) in str(err)


def test_wrong_access_method(tmp_path: Path, bnci: dict[str, Any]) -> None:
    bnci["access"]["method"] = "ftp"
    err = _error_for(tmp_path, bnci)
    assert err.field == "access.method"
    assert "access.method" in str(err) and "'ftp'" in str(err)


def test_missing_moabb_id(tmp_path: Path, bnci: dict[str, Any]) -> None:
    del bnci["access"]["moabb_id"]
    err = _error_for(tmp_path, bnci)
    assert err.field == "access.moabb_id"
    assert "access.moabb_id" in str(err)


def test_non_numeric_reference_value(tmp_path: Path, bnci: dict[str, Any]) -> None:
    bnci["reference_results"][0]["value"] = "high"
    err = _error_for(tmp_path, bnci)
    assert err.field == "reference_results[0].value"
    assert "reference_results[0].value" in str(err) and "number" in str(err)


def test_boolean_is_not_a_number(bnci: dict[str, Any]) -> None:
    bnci["reference_results"][0]["value"] = True
    problems = validate_card_dict(bnci)
    assert len(problems) == 1 and "reference_results[0].value" in problems[0]


def test_id_must_equal_file_stem(tmp_path: Path, bnci: dict[str, Any]) -> None:
    err = _error_for(tmp_path, bnci, stem="renamed")
    assert err.field == "id"
    assert "'renamed'" in str(err) and "bnci2014_001" in str(err)


def test_all_problems_are_collected(tmp_path: Path, bnci: dict[str, Any]) -> None:
    del bnci["licence"]
    bnci["modality"] = "audio"
    bnci["reference_results"][0]["source"] = 12
    bnci["source"]["url"] = "ftp://example.org"
    err = _error_for(tmp_path, bnci)
    message = str(err)
    assert "4 problems" in message
    for where in ("'licence'", "'modality'", "'reference_results[0].source'", "'source.url'"):
        assert where in message
    assert err.field == "licence"


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d.update(license=d.pop("licence")), "licence"),
        (lambda d: d.update(labels={}), "labels"),
        (lambda d: d.update(labels={769: ""}), "labels[769]"),
        (lambda d: d["protocol"].pop("splits"), "protocol.splits"),
        (lambda d: d.update(reference_results={"a": 1}), "reference_results"),
        (lambda d: d.update(id="bad id!"), "id"),
        (lambda d: d.update(subjects=0), "subjects"),
        (lambda d: d.update(app="other"), "app"),
        (lambda d: d.update(access={"method": "manual", "steps": "download it"}), "access.steps"),
        (
            lambda d: d.update(access={"method": "package", "loader": "load digits"}),
            "access.loader",
        ),
        (lambda d: d.update(access={"method": "url", "url": "example.org/x.zip"}), "access.url"),
        (lambda d: d["reference_results"].append({"method": "m"}), "reference_results[N].metric"),
        (lambda d: d["protocol"].update(sessions={"co": "0train:0"}), "protocol.sessions.co"),
        (lambda d: d["protocol"].update(sessions={"xx": "all"}), "protocol.sessions['xx']"),
        (lambda d: d["protocol"].update(sessions={"co": ["0train"]}), "protocol.sessions.co"),
        (lambda d: d["protocol"].update(sepclr={"augment": {}}), "protocol.sepclr.loss_weights"),
        (
            lambda d: d["protocol"].update(sepclr={"loss_weights": {
                "common": 1, "salient": -1, "regulariser": 1, "mi": 1}}),
            "protocol.sepclr.loss_weights.salient",
        ),
        (
            lambda d: d["protocol"].update(sepclr={"loss_weights": {
                "common": 1, "salient": 1, "regulariser": 1, "mi": 1},
                "augment": {"hflip": 2}}),
            "protocol.sepclr.augment.hflip",
        ),
    ],
)
def test_each_field_is_checked(mutate: Any, where: str, bnci: dict[str, Any]) -> None:
    data = copy.deepcopy(bnci)
    # N: the index of an entry appended after the card's own results
    where = where.replace("[N]", f"[{len(data['reference_results'])}]")
    mutate(data)
    problems = validate_card_dict(data)
    assert problems, where
    assert any(f"'{where}'" in p for p in problems), problems


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(labels={True: "x"}), "'labels[True]' key must be an integer or a"),
        (lambda d: d.update(labels={"cat": 3}), "'labels['cat']' must be a non-empty string name"),
        (lambda d: d.update(title="  "), "'title' is empty"),
        (lambda d: d.update(title=None), "'title' is empty"),
        (lambda d: d.update(title=3), "'title' must be a string, got an integer 3"),
        (lambda d: d.update(subjects=9.0), "'subjects' must be a positive integer"),
        (lambda d: d.update(spacing_mm=[1, -1]), "'spacing_mm[1]' must be a positive number"),
        (lambda d: d.update(channels="22"), "'channels' must be a positive integer or a list"),
        (lambda d: d.update(sampling_rate_hz=0), "'sampling_rate_hz' must be a positive number"),
        (lambda d: d["protocol"].update(splits={}), "'protocol.splits' must not be empty"),
        (lambda d: d["protocol"].update(splits=[1]), "'protocol.splits' must be a string or a"),
        (lambda d: d["reference_results"][0].update(std="x"), "'reference_results[0].std' must"),
        (lambda d: d.pop("reference_results"), "'reference_results' is missing; use []"),
        (
            lambda d: d.update(access={"method": "manual", "steps": ["a", 3]}),
            "'access.steps[1]' must be a string",
        ),
        (
            lambda d: d.update(access={"method": "manual"}),
            "'access.steps' is missing; method 'manual' needs",
        ),
    ],
)
def test_each_problem_says_what_the_value_must_be(
    mutate: Any, expected: str, bnci: dict[str, Any]
) -> None:
    mutate(bnci)
    problems = validate_card_dict(bnci)
    assert len(problems) == 1, problems
    assert f"field {expected}" in problems[0]


def test_schema_is_valid_json_schema_and_lists_every_field() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(CARD_SCHEMA)
    assert json.loads(json.dumps(CARD_SCHEMA)) == CARD_SCHEMA  # plain JSON, usable by editors
    assert set(CARD_SCHEMA["required"]) <= set(CARD_SCHEMA["properties"])
    assert {f.name for f in fields(DataCard)} - {"path"} == set(CARD_SCHEMA["properties"])


def test_problems_follow_the_schema_order(tmp_path: Path, bnci: dict[str, Any]) -> None:
    bnci["licence "] = "typo"
    bnci["reference_results"][0]["value"] = "high"
    del bnci["task"]
    problems = validate_card_dict(bnci, stem="renamed")
    assert [p.split("'")[1] for p in problems] == [
        "licence ",  # unknown fields, then missing ones, then each field's value
        "task",
        "reference_results[0].value",
        "id",
    ]
    err = _error_for(tmp_path, bnci, stem="renamed")
    assert err.field == "licence " and "4 problems" in str(err)


def test_importing_medcl_io_leaves_jsonschema_unloaded() -> None:
    code = (
        "import sys, medcl.io\n"
        "assert 'jsonschema' not in sys.modules\n"
        "medcl.io.validate_card_dict({})\n"
        "assert 'jsonschema' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_unknown_field_suggests_spelling(bnci: dict[str, Any]) -> None:
    bnci["license"] = bnci.pop("licence")
    problems = validate_card_dict(bnci)
    assert any("did you mean 'licence'" in p for p in problems)


def test_other_access_methods_validate(bnci: dict[str, Any]) -> None:
    for access in (
        {"method": "manual", "steps": ["register", "download"]},
        {"method": "url", "url": "https://example.org/data.zip"},
        {"method": "package", "loader": "sklearn.datasets.load_digits"},
    ):
        assert validate_card_dict({**bnci, "access": access}) == []


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(DataCardError, match="mapping"):
        load_card(path)
    path.write_text("")
    with pytest.raises(DataCardError, match="mapping"):
        load_card(path)


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("id: x\ntitle: [unclosed\n")
    with pytest.raises(DataCardError, match="line") as info:
        load_card(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataCardError, match="not found"):
        load_card(tmp_path / "nope.yaml")


# -- lookup ---------------------------------------------------------------------------------
def test_get_card_unknown_id() -> None:
    with pytest.raises(DataCardError) as info:
        get_card("bnci")
    message = str(info.value)
    assert "'bnci'" in message
    assert "bnci2014_001" in message and "sklearn_digits" in message
    assert "did you mean 'bnci2014_001'" in message


def test_list_cards_and_env_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bnci: dict[str, Any]
) -> None:
    assert [c.id for c in list_cards()] == sorted(p.stem for p in SHIPPED)
    bnci["id"] = "mine"
    _write(tmp_path, bnci)
    monkeypatch.setenv("MEDCL_CARDS_DIR", str(tmp_path))
    assert cards_dir() == tmp_path
    assert [c.id for c in list_cards()] == ["mine"]
    assert get_card("mine").title == bnci["title"]
    with pytest.raises(DataCardError, match="folder not found"):
        list_cards(tmp_path / "absent")


def test_to_dict_round_trip() -> None:
    card = get_card("bnci2014_001")
    again = DataCard.from_dict(card.to_dict())
    assert again == card
    assert "path" not in card.to_dict()


# -- the CLI --------------------------------------------------------------------------------
runner = CliRunner()


def test_cli_list_shows_both_ids() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert "sklearn_digits" in result.stdout
    assert "bnci2014_001" in result.stdout


def test_cli_show_prints_title() -> None:
    result = runner.invoke(app, ["show", "bnci2014_001"])
    assert result.exit_code == 0, result.output
    assert get_card("bnci2014_001").title in result.stdout
    assert "left_hand" in result.stdout


def test_cli_show_unknown_id() -> None:
    result = runner.invoke(app, ["show", "nope"])
    assert result.exit_code == MedclError.exit_code
    assert "unknown data card 'nope'" in result.stderr
    assert "Traceback" not in result.output


def test_cli_validate_default_folder() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert f"{len(SHIPPED)} card(s) valid" in result.stdout


def test_cli_validate_broken_card(tmp_path: Path, bnci: dict[str, Any]) -> None:
    good = _write(tmp_path, {**bnci, "id": "good"})
    del bnci["access"]["moabb_id"]
    bad = _write(tmp_path, bnci)
    result = runner.invoke(app, ["validate", str(good), str(bad)])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "access.moabb_id" in result.stderr
    assert str(bad) in result.stderr
    assert "Traceback" not in result.output
    assert "ok" in result.stdout and "good" in result.stdout

    folder_result = runner.invoke(app, ["validate", str(tmp_path)])
    assert folder_result.exit_code == 2
    assert "1 of 2 card(s) invalid" in folder_result.stderr


def test_cli_validate_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2
    assert "not found" in result.stderr

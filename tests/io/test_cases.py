"""Tests of medcl.io.cases: folder pairs and the resumable per-case table."""

from __future__ import annotations

import pandas as pd
import pytest

from medcl.io import InputFileError
from medcl.io.cases import IMAGE_2D_SUFFIXES, case_id, list_cases, run_cases

COLUMNS = ["method", "case_id", "score", "status", "error"]


def test_case_id_strips_suffix_and_channel():
    assert case_id("a/case_001.nii.gz") == "case_001"
    assert case_id("case_001_0000.nii") == "case_001"
    assert case_id("x.PNG", IMAGE_2D_SUFFIXES) == "x"
    assert case_id("Case_002.NII.GZ") == "Case_002"
    # the longest ending wins whatever the order of the list: .nii.gz is never cut as .gz
    assert case_id("c.nii.gz", (".gz", ".nii", ".nii.gz")) == "c"


def test_one_list_of_nifti_suffixes():
    from medcl.io import cases, nifti

    assert cases.NIFTI_SUFFIXES is nifti.NIFTI_SUFFIXES
    assert cases.list_cases.__kwdefaults__["suffixes"] is nifti.NIFTI_SUFFIXES


def test_list_cases_pairs_and_errors(tmp_path):
    img, lab = tmp_path / "images", tmp_path / "labels"
    img.mkdir()
    lab.mkdir()
    (img / "b_0000.nii.gz").write_bytes(b"")
    (img / "a.nii").write_bytes(b"")
    (img / "notes.txt").write_text("x")
    (lab / "a.nii.gz").write_bytes(b"")
    (lab / "b.nii.gz").write_bytes(b"")
    cases = list_cases(img, lab)
    assert [(c, i.name, la.name) for c, i, la in cases] == [
        ("a", "a.nii", "a.nii.gz"), ("b", "b_0000.nii.gz", "b.nii.gz")]
    (lab / "b.nii.gz").unlink()
    with pytest.raises(InputFileError, match=r"no label file for case b.*add b\.nii\.gz"):
        list_cases(img, lab)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no image files"):
        list_cases(tmp_path / "empty")
    with pytest.raises(InputFileError, match="not found"):
        list_cases(tmp_path / "missing")


def test_run_cases_failure_resume_and_retry(tmp_path):
    calls = []

    def score(cid, item):
        calls.append(cid)
        if item is None:
            raise ValueError("broken file")
        return [{"score": item}]

    csv = tmp_path / "out" / "cases.csv"
    items = [("a", 1.0), ("bad", None), ("c", 3.0)]
    df = run_cases(items, score, csv, method="m", columns=COLUMNS)
    assert calls == ["a", "bad", "c"]
    assert df.set_index("case_id").loc["bad", "status"] == "failed"
    assert "broken file" in df.set_index("case_id").loc["bad", "error"]
    assert df.set_index("case_id").loc["c", "score"] == 3.0
    on_disk = pd.read_csv(csv, dtype={"case_id": str})
    assert len(on_disk) == 3
    # same command again: nothing re-scored
    run_cases(items, score, csv, method="m", columns=COLUMNS)
    assert calls == ["a", "bad", "c"]
    # another method shares the table; retry only re-runs the failed case
    run_cases([("bad", 2.0)], score, csv, method="m", columns=COLUMNS, retry_failed=True)
    df = run_cases([("a", 5.0)], score, csv, method="other", columns=COLUMNS)
    assert calls[-2:] == ["bad", "a"]
    assert sorted(df.status) == ["ok"] * 4
    assert len(df[df.method == "m"]) == 3


def test_run_cases_rejects_foreign_table(tmp_path):
    csv = tmp_path / "cases.csv"
    csv.write_text("x,y\n1,2\n")
    with pytest.raises(InputFileError, match="lacks columns"):
        run_cases([], lambda c, i: [], csv, method="m", columns=COLUMNS)


def test_run_cases_signature_refuses_other_inputs(tmp_path):
    from medcl.io import ConfigError
    from medcl.io.cases import check_signature, signature_path

    csv = tmp_path / "cases.csv"
    sig = {"model": "/runs/a", "images": "/data/img", "label_map": "identity"}
    run_cases([("a", 1.0)], lambda c, i: [{"score": i}], csv, method="m", columns=COLUMNS,
              signature=sig)
    assert signature_path(csv).exists()
    # the same inputs resume (nothing re-scored); other inputs are refused, nothing written
    df = run_cases([("a", 9.0)], lambda c, i: [{"score": i}], csv, method="m",
                   columns=COLUMNS, signature=dict(sig))
    assert df.score.tolist() == [1.0]
    before = csv.read_bytes()
    with pytest.raises(ConfigError, match="model was '/runs/a', now '/runs/b'"):
        run_cases([("b", 2.0)], lambda c, i: [{"score": i}], csv, method="m",
                  columns=COLUMNS, signature={**sig, "model": "/runs/b"})
    assert csv.read_bytes() == before
    with pytest.raises(ConfigError, match="another --out"):
        check_signature(csv, {**sig, "label_map": "card prostate158"})
    # a table without a record of its inputs cannot be resumed with a signature
    signature_path(csv).unlink()
    with pytest.raises(ConfigError, match="record of their inputs"):
        check_signature(csv, sig)
    # without a signature (DB-SAM's use) nothing changes
    run_cases([("b", 2.0)], lambda c, i: [{"score": i}], csv, method="m", columns=COLUMNS)

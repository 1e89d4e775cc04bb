"""``medcl evaluate --app mvcnet``: one unit per subject, recordings under --root as the
competition / simulate files are named; subjects resume after an interruption."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    from medcl.mvcnet.simulate import write_simulated

    root = tmp_path_factory.mktemp("eeg")
    write_simulated(root, subjects=2, fmt="edf", n_trials_per_class=20, snr=2.0, seed=0)
    return root


def test_subjects_as_units_with_csp_lda(recordings, tmp_path, medcl_cli):
    out = tmp_path / "ev"
    args = ["evaluate", "--card", "bnci2014_001", "--app", "mvcnet", "--root", recordings,
            "--option", "models=csp_lda", "--option", "seeds=1", "--out", out,
            "--progress", "quiet"]
    code, _, err = medcl_cli(args)
    assert code == 0, err
    table = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert list(table.case_id) == ["sub-01", "sub-02"]
    assert set(table.model) == {"csp_lda"} and (table.protocol == "co").all()
    assert table.accuracy.between(0, 1).all() and (table.n_test == 8).all()  # last 20 %
    assert table.accuracy.mean() > 0.6  # snr 2: above chance (0.5) on average
    first = (out / "cases.csv").read_text()
    code, _, err = medcl_cli(args)  # a rerun: both subjects done, nothing recomputed
    assert code == 0 and (out / "cases.csv").read_text() == first


def test_card_without_moabb_or_files(tmp_path, medcl_cli):
    code, _, err = medcl_cli(["evaluate", "--card", "bnci2014_001", "--app", "mvcnet",
                              "--root", tmp_path, "--out", tmp_path / "e"])
    assert code == 2 and "no EEG recording" in err and len(err.strip().splitlines()) == 1
    code, _, err = medcl_cli(["evaluate", "--card", "msd_task09_spleen", "--app", "mvcnet",
                              "--out", tmp_path / "e"])
    assert code == 2 and "not an EEG card" in err

"""``medcl mvcnet`` end to end on recordings written here, and bad inputs: exit 2, a message
naming the file, nothing half-written."""

import pandas as pd
import pytest

TINY = ["--epochs", "2", "--seeds", "1", "--trans-hidden", "16", "--batch-size", "16",
        "--resample", "125"]



@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    from mvcnet.simulate import write_simulated

    return write_simulated(tmp_path_factory.mktemp("mi"), subjects=2, fmt="edf",
                           n_trials_per_class=10, seed=0)


def test_train_then_predict(recordings, tmp_path, medcl_cli):
    run_dir = tmp_path / "run"
    args = ["mvcnet", "train", "--out", run_dir, "--models", "mvcnet,csp_lda", *TINY]
    for path in recordings:
        args += ["--data", path]
    code, out, err = medcl_cli(args)
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "results.csv",
                 "confusion.png", "learning_curves.png"):
        assert (run_dir / name).exists(), name
    results = pd.read_csv(run_dir / "results.csv")
    assert set(results.model) == {"mvcnet (cnn)", "mvcnet (fused)", "csp_lda"}
    assert "CO (within subject" in (run_dir / "report.md").read_text()

    pred = tmp_path / "predictions.csv"
    code, out, err = medcl_cli(["mvcnet", "predict", "--model", run_dir, "--data", recordings[0],
                          "--out", pred])
    assert code == 0, err
    table = pd.read_csv(pred)
    assert len(table) == 20 and set(table.predicted) <= {"left", "right"}
    assert {"onset_s", "p_left", "p_right", "true"} <= set(table.columns)
    assert ((table.p_left + table.p_right - 1).abs() < 1e-5).all()


def test_bad_inputs(recordings, tmp_path, medcl_cli):
    out = tmp_path / "out"
    code, _, err = medcl_cli(["mvcnet", "train", "--data", tmp_path / "missing.edf", "--out", out,
                        *TINY])
    assert code == 2 and "missing.edf" in err
    odd = tmp_path / "rec.xyz"
    odd.write_text("x")
    code, _, err = medcl_cli(["mvcnet", "train", "--data", odd, "--out", out, *TINY])
    assert code == 2 and "rec.xyz" in err
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--events",
                        "left=1,right=2", "--out", out, *TINY])
    assert code == 2 and recordings[0].name in err
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--protocol", "loso",
                        "--out", out, *TINY])
    assert code != 0 and "loso" in (err + _).lower()
    assert not out.exists()
    code, _, err = medcl_cli(["mvcnet", "train", "--data", recordings[0], "--models", "svm",
                        "--out", out])
    assert code == 2 and "--models" in err


def test_predict_bad_inputs(recordings, tmp_path, medcl_cli):
    not_a_run = tmp_path / "nope"
    not_a_run.mkdir()
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", not_a_run, "--data", recordings[0],
                        "--out", tmp_path / "p.csv"])
    assert code == 2 and "config.yaml" in err
    code, _, err = medcl_cli(["mvcnet", "predict", "--model", not_a_run, "--data", recordings[0],
                        "--out", recordings[0]])
    assert code == 2
    assert recordings[0].exists() and recordings[0].stat().st_size > 1000

"""``medcl core gcd`` end to end on digits-lt and on a folder, and its bad inputs."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

FAST = ["--epochs", "2", "--batch-size", "64", "--quiet"]


def test_bacon_train_and_evaluate(tmp_path, core_cli):
    run = tmp_path / "run"
    code, out, err = core_cli(["gcd", "train", "--data", "digits-lt", "--known", "0,1,2,3,4",
                               "--imbalance", "10", "--out", run, *FAST])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "accuracy.csv",
                 "distribution.csv", "loss.png"):
        assert (run / name).exists(), name
    acc = pd.read_csv(run / "accuracy.csv")
    assert {"all", "old", "new"} <= set(acc.columns)
    assert 0 <= float(acc["all"][0]) <= 1
    dist = pd.read_csv(run / "distribution.csv")
    assert len(dist) == 10 and dist["true_count"].iloc[0] > dist["true_count"].iloc[-1]
    log = pd.read_csv(run / "metrics.csv")
    assert list(log["epoch"]) == [1, 2] and "soft_supcon" in log.columns
    ev = tmp_path / "ev"
    code, out, err = core_cli(["gcd", "evaluate", "--model", run, "--out", ev])
    assert code == 0, err
    assert pd.read_csv(ev / "accuracy.csv")["n_images"][0] > 500  # every image, not one split


@pytest.mark.parametrize("method", ["gcd", "simgcd"])
def test_baselines_train(tmp_path, core_cli, method):
    run = tmp_path / method
    code, out, err = core_cli(["gcd", "train", "--method", method, "--known", "0,1,2,3,4",
                               "--imbalance", "100", "--out", run, *FAST])
    assert code == 0, err
    assert (run / "accuracy.csv").exists() and not (run / "distribution.csv").exists()


def test_bad_known_and_method(tmp_path, core_cli):
    run = tmp_path / "run"
    code, out, err = core_cli(["gcd", "train", "--known", "0,1,12", "--out", run, *FAST])
    assert code == 2 and "--known names class(es) 12 absent" in err
    assert len(err.strip().splitlines()) == 1 and not run.exists()
    code, out, err = core_cli(["gcd", "train", "--known", ",".join(map(str, range(10))),
                               "--out", run, *FAST])
    assert code == 2 and "nothing to discover" in err and not run.exists()
    code, out, err = core_cli(["gcd", "train", "--known", "0", "--method", "nope",
                               "--out", run, *FAST])
    assert code == 2 and "--method 'nope' is unknown" in err and not run.exists()


def test_folder_data(tmp_path, core_cli):
    rng = np.random.default_rng(0)
    for c, name in enumerate(["cat", "dog", "owl"]):
        (tmp_path / "imgs" / name).mkdir(parents=True)
        for i in range(12):
            px = rng.uniform(0, 60, (8, 8)) + 90 * c
            Image.fromarray(px.astype(np.uint8)).save(tmp_path / "imgs" / name / f"{i}.png")
    code, out, err = core_cli(["gcd", "train", "--data", tmp_path / "imgs", "--known",
                               "cat,dog", "--method", "gcd", "--out", tmp_path / "r", *FAST])
    assert code == 0, err
    code, out, err = core_cli(["gcd", "train", "--data", tmp_path / "imgs", "--known",
                               "cow", "--out", tmp_path / "r2", *FAST])
    assert code == 2 and "cow" in err and "classes: cat, dog, owl" in err

"""``medcl core gcd`` end to end on digits-lt and on a folder, its bad inputs, and a short
training of each method on a fixed batch."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

FAST = ["--epochs", "2", "--batch-size", "64", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_bacon_train_and_evaluate(tmp_path, core_cli):
    run = tmp_path / "run"
    code, out, err = core_cli(["gcd", "train", "--data", "digits-lt", "--known", "0,1,2,3,4",
                               "--imbalance", "100", "--out", run, *FAST])
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
    n_all = yaml.safe_load((run / "config.yaml").read_text())["data_record"]["n_images"]
    assert int(acc["n_images"][0]) < n_all  # training scores the unlabelled images only
    assert int(pd.read_csv(ev / "accuracy.csv")["n_images"][0]) == n_all  # evaluate: every one


@pytest.mark.parametrize("method", ["gcd", "simgcd"])
def test_baselines_train(tmp_path, core_cli, method):
    run = tmp_path / method
    code, out, err = core_cli(["gcd", "train", "--method", method, "--known", "0,1,2,3,4",
                               "--imbalance", "100", "--epochs", "1", "--batch-size", "64",
                               "--quiet", "--out", run])
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


def test_wrong_architecture_weights(tmp_path, core_cli):
    run = tmp_path / "run"
    assert core_cli(["gcd", "train", "--method", "gcd", "--known", "0,1,2,3,4", "--imbalance",
                     "100", "--epochs", "1", "--batch-size", "64", "--quiet",
                     "--out", run])[0] == 0
    torch.save(torch.nn.Linear(3, 2).state_dict(), run / "model.pt")
    ev = tmp_path / "ev"
    code, out, err = core_cli(["gcd", "evaluate", "--model", run, "--out", ev])
    assert code == 2 and "model.pt does not match" in err
    assert len(err.strip().splitlines()) == 1 and not ev.exists()
    (run / "model.pt").write_bytes(b"not a checkpoint")
    code, out, err = core_cli(["gcd", "evaluate", "--model", run, "--out", ev])
    assert code == 2 and len(err.strip().splitlines()) == 1 and not ev.exists()


# -- a short training lowers each loss --------------------------------------------------------
# ratio = mean of the last 5 of 80 steps / first step, on one fixed batch (64 digits, fixed
# views). Measured maxima over seeds 0-2 in brackets; SimCLR at tau = 1 has a high floor
# (about log(2N - 1) - 1 for uniform negatives), hence its looser bound.
BOUNDS = {"loss": 0.85, "simclr": 0.92, "supcon": 0.75, "distill": 0.75, "reg": 0.75,
          "ce": 0.2, "soft_supcon": 0.9}
#          [0.75,    0.84,            0.56,           0.47,            0.39,      0.02, 0.76]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("method", ["gcd", "bacon", "simgcd"])
def test_short_training_lowers_each_loss(method, seed):
    from medcl.core.data import BatchAugment, load_digits_set
    from medcl.core.gcd_train import Estimate, GCDConfig, GCDModel, _step

    digits = load_digits_set()
    torch.manual_seed(seed)
    idx = torch.randperm(len(digits.images))[:64]
    y_true = torch.as_tensor(digits.labels[idx.numpy()])
    lab = (y_true < 5) & (torch.arange(64) % 2 == 0)
    y = torch.where(lab, y_true, torch.full_like(y_true, -1))
    views = BatchAugment((8, 8), 1, 2)(digits.images[idx])
    cfg = GCDConfig(method=method, width=8, proj_dim=16, seed=seed)
    model = GCDModel(method, 1, 10, cfg.width, cfg.proj_dim)
    est = (Estimate(np.array([40, 30, 20, 12, 8, 6, 4, 3, 2, 1.0]), cfg)
           if method == "bacon" else None)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(80):
        parts = _step(model, cfg, views, y, lab, 5, est, gen)
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        history.append({k: float(v.detach()) for k, v in parts.items()})
    expected = {"gcd": {"loss", "simclr", "supcon"},
                "simgcd": {"loss", "simclr", "supcon", "distill", "reg", "ce"},
                "bacon": set(BOUNDS)}[method]
    assert set(history[0]) == expected
    for key in expected:
        first, last = history[0][key], sum(h[key] for h in history[-5:]) / 5
        assert last < BOUNDS[key] * first, (key, first, last)

"""``medcl core itm`` end to end (VSE, DBL with its anchors, evaluate) and bad inputs."""

import pandas as pd
import yaml

TINY = ["--data", "shapes", "--n-shapes", "60", "--image-size", "32", "--batch-size", "20",
        "--quiet"]


def test_vse_then_dbl_frozen_and_evaluate(tmp_path, core_cli):
    vse = tmp_path / "vse"
    code, _, err = core_cli(["itm", "train", "--method", "vse", "--epochs", "4", "--out", vse,
                             *TINY])
    assert code == 0, err
    log = pd.read_csv(vse / "metrics.csv")
    assert log["triplet"].iloc[-1] < log["triplet"].iloc[0]  # a short training lowers it
    table = pd.read_csv(vse / "retrieval.csv")
    assert list(table["scores"]) == ["vse"] and {"i2t_r1", "t2i_r10", "rsum"} <= set(table)
    dbl = tmp_path / "dbl"
    code, _, err = core_cli(["itm", "train", "--method", "dbl", "--anchor", "frozen",
                             "--anchor-run", vse, "--boost", "abs", "--epochs", "1",
                             "--out", dbl, *TINY])
    assert code == 0, err
    assert yaml.safe_load((dbl / "config.yaml").read_text())["config"]["anchor"] == "frozen"
    ev = tmp_path / "ev"
    code, _, err = core_cli(["itm", "evaluate", "--model", dbl, "--out", ev])
    assert code == 0, err
    table = pd.read_csv(ev / "retrieval.csv")
    assert list(table["scores"]) == ["anchor", "target", "cooperative (mean of both)"]
    assert (ev / "retrieval.md").read_text().startswith("| scores")
    assert ((table["rsum"] >= 0) & (table["rsum"] <= 600)).all()


def test_dbl_joint_and_ema_train(tmp_path, core_cli):
    for anchor in ("joint", "ema"):
        out = tmp_path / anchor
        code, _, err = core_cli(["itm", "train", "--anchor", anchor, "--epochs", "1",
                                 "--out", out, *TINY])
        assert code == 0, err
        log = pd.read_csv(out / "metrics.csv")
        assert "boost" in log and ("anchor_triplet" in log) == (anchor == "joint")


def test_bad_inputs_exit_2(tmp_path, core_cli):
    out = tmp_path / "x"
    code, _, err = core_cli(["itm", "train", "--method", "clip", "--out", out, *TINY])
    assert code == 2 and "--method 'clip'" in err and not out.exists()
    code, _, err = core_cli(["itm", "train", "--anchor", "frozen", "--out", out, *TINY])
    assert code == 2 and "--anchor-run" in err and not out.exists()
    code, _, err = core_cli(["itm", "evaluate", "--model", tmp_path, "--out", out])
    assert code == 2 and "not a run folder" in err and not out.exists()

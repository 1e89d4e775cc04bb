"""``medcl core image compare``: equal budgets, the three outputs, resume of units, refusals."""

import pandas as pd

from medcl.io.atomic import write_csv

ARGS = ["image", "compare", "--methods", "simclr,mv-dhel", "--seeds", "0,1", "--data",
        "digits", "--budget-minutes", "0.02", "--batch-size", "256", "--quiet"]


def test_compare_writes_table_plot_and_resumes(tmp_path, core_cli):
    out = tmp_path / "cmp"
    code, text, err = core_cli([*ARGS, "--out", out])
    assert code == 0, err
    for name in ("units.csv", "compare.csv", "compare.md", "compare.png", "config.yaml",
                 "units/simclr-seed0/metrics.csv"):
        assert (out / name).exists(), name
    assert not (out / "metrics.csv").exists()  # metrics.csv is a training log, not a table
    units = pd.read_csv(out / "units.csv")
    assert list(zip(units["method"], units["seed"], strict=True)) == [
        ("random-init", 0), ("random-init", 1), ("simclr", 0), ("simclr", 1), ("mv-dhel", 0),
        ("mv-dhel", 1)]
    trained = units[units["method"] != "random-init"]
    assert (units["status"] == "ok").all() and (trained["epochs"] >= 1).all()
    assert units[["knn", "linear"]].apply(lambda c: c.between(0, 1)).all().all()
    summary = pd.read_csv(out / "compare.csv")
    assert list(summary["method"]) == ["random-init", "simclr", "mv-dhel"]
    assert (summary["seeds"] == 2).all()
    mean = units[units["method"] == "simclr"]["knn"].mean()
    assert abs(summary.loc[1, "knn_mean"] - mean) < 1e-9
    assert "0.3 s of training per method and seed" in (out / "compare.md").read_text()

    # a run killed after its fourth unit: only the two missing units run again
    write_csv(out / "units.csv", units.iloc[:4])
    code, text, err = core_cli([*ARGS, "--out", out])
    assert code == 0, err
    again = pd.read_csv(out / "units.csv")
    pd.testing.assert_frame_equal(again.iloc[:4], units.iloc[:4])  # kept, not recomputed
    assert list(again["method"]) == list(units["method"]) and (again["status"] == "ok").all()
    assert len(pd.read_csv(out / "compare.csv")) == 3

    # other inputs into the same folder are refused before anything is written
    code, text, err = core_cli([*ARGS[:-3], "--batch-size", "128", "--quiet", "--out", out])
    assert code == 2 and "batch_size was 256, now 128" in err


def test_compare_refuses_bad_methods_and_unlabelled_data(tmp_path, core_cli):
    from PIL import Image

    out = tmp_path / "cmp"
    code, text, err = core_cli(["image", "compare", "--methods", "simclr,nope", "--out", out])
    assert code == 2 and "--methods 'nope' is not a known method" in err
    code, text, err = core_cli(["image", "compare", "--methods", "simclr,simclr", "--out", out])
    assert code == 2 and "twice" in err
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        Image.new("L", (8, 8), i * 80).save(flat / f"{i}.png")
    code, text, err = core_cli(["image", "compare", "--methods", "simclr", "--data", flat,
                                "--out", out])
    assert code == 2 and "has no labels" in err
    assert not out.exists()


def test_a_failing_unit_exits_2_after_the_others(tmp_path, core_cli, monkeypatch):
    from medcl.core import recipes

    def broken(ctx):
        raise RuntimeError("boom")

    monkeypatch.setitem(recipes.RECIPES, "dcl", recipes.RECIPES["dcl"].__class__(
        **{**recipes.RECIPES["dcl"].__dict__, "build": broken}))
    out = tmp_path / "cmp"
    code, text, err = core_cli(["image", "compare", "--methods", "dcl,simclr", "--seeds", "0",
                                "--budget-minutes", "0.01", "--quiet", "--out", out])
    assert code == 2 and "1 unit(s) failed" in err and "boom" in err
    units = pd.read_csv(out / "units.csv")
    assert list(units["status"]) == ["ok", "failed", "ok"]  # random-init, dcl, simclr

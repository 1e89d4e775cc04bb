"""``medcl core points`` end to end on generated scenes and files written here; bad inputs exit
2 with one line and write nothing."""

import numpy as np
import pandas as pd
import pytest
import yaml

SMALL = ["--backbone", "pointnet", "--points", "96", "--epochs", "1", "--quiet"]


def _cloud_folder(root, n=4):
    rng = np.random.default_rng(0)
    root.mkdir()
    labels = root.parent / "labels"
    labels.mkdir()
    for i in range(n):
        plane = np.c_[rng.uniform(0, 2, (150, 2)), np.zeros(150)]
        blob = rng.normal(0, 0.1, (60, 3)) + [1, 1, 0.4]
        np.save(root / f"c{i}.npy", np.r_[plane, blob])
        np.save(labels / f"c{i}.npy", np.r_[np.zeros(150, int), np.ones(60, int)])
    return root, labels


def test_pretrain_scenes_then_embed_and_evaluate(tmp_path, core_cli):
    run = tmp_path / "run"
    code, out, err = core_cli(["points", "pretrain", "--method", "fac", "--data", "scenes",
                                "--scenes", "2", "--label-fraction", "0.1,1", "--out", run,
                               *SMALL])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "loss.png",
                 "probes.csv", "scene.png"):
        assert (run / name).exists(), name
    assert yaml.safe_load((run / "config.yaml").read_text())["config"]["method"] == "fac"
    probes = pd.read_csv(run / "probes.csv")
    assert list(probes["features"]) == ["encoder, random init", "encoder, fac"]
    assert {"miou_0.1", "miou_1"} <= set(probes.columns)

    data, labels = _cloud_folder(tmp_path / "clouds")
    emb = tmp_path / "emb.parquet"
    code, out, err = core_cli(["points", "embed", "--model", run, "--data", data, "--out", emb])
    assert code == 0, err
    table = pd.read_parquet(emb)
    assert len(table) == 4 * 210 and table.filter(like="z_").shape[1] == 64
    code, out, err = core_cli(["points", "embed", "--model", run, "--data", data, "--out",
                               tmp_path / "c.csv", "--per", "cloud"])
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "c.csv")) == 4

    ev = tmp_path / "eval"
    code, out, err = core_cli(["points", "evaluate", "--model", run, "--data", data,
                               "--labels", labels, "--label-fraction", "0.1,1", "--out", ev])
    assert code == 0, err
    scores = pd.read_csv(ev / "probes.csv")
    assert scores["miou_1"].iloc[0] > 0.5 and (ev / "scene.png").exists()


@pytest.mark.parametrize("case", ["empty", "nan", "noxyz", "count", "nofiles", "method"])
def test_bad_inputs_exit_2_and_write_nothing(tmp_path, core_cli, case):
    data = tmp_path / "d"
    data.mkdir()
    xyz = np.random.default_rng(0).normal(size=(40, 3))
    np.save(data / "ok.npy", xyz)
    args = ["--method", "fac"]
    if case == "empty":
        np.save(data / "e.npy", np.zeros((0, 3)))
    elif case == "nan":
        xyz[0, 0] = np.inf
        np.save(data / "n.npy", xyz)
    elif case == "noxyz":
        from plyfile import PlyData, PlyElement

        arr = np.zeros(40, dtype=[("u", "f4"), ("v", "f4"), ("w", "f4")])
        PlyData([PlyElement.describe(arr, "vertex")]).write(str(data / "p.ply"))
    elif case == "count":
        np.save(data / "ok.labels.npy", np.zeros(3, int))
    elif case == "nofiles":
        (data / "ok.npy").unlink()
    else:
        args = ["--method", "pointbert"]
    run = tmp_path / "run"
    code, out, err = core_cli(["points", "pretrain", "--data", data, "--out", run, *args,
                               *SMALL])
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert not run.exists()


def test_compare_scenes_tiny(tmp_path, core_cli):
    out = tmp_path / "cmp"
    code, text, err = core_cli(["points", "compare", "--out", out, "--seeds", "0",
                                "--methods", "fac,pointcontrast", "--scenes", "3",
                                "--points", "96", "--epochs", "1", "--quiet"])
    assert code == 0, err
    summary = pd.read_csv(out / "compare.csv")
    assert list(summary["method"]) == ["random-init", "fac", "pointcontrast"]
    assert (out / "compare.png").exists() and "mIoU 1%" in (out / "compare.md").read_text()


def test_demo_step_is_declared():
    from medcl.core.points_demo import STEP

    assert STEP.name == "core-points" and callable(STEP.run)


@pytest.mark.slow
def test_demo_step_runs(tmp_path):
    from medcl.core.points_demo import STEP

    text = STEP.run(tmp_path / "demo", 1, 0)
    assert text.startswith("## core-points") and (tmp_path / "demo" / "compare.png").exists()

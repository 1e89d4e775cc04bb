"""``medcl core skeleton pretrain`` and ``evaluate`` end to end (synth and files written here),
and the bad inputs: exit 2, one line naming the file and problem, nothing written."""

import numpy as np
import pandas as pd
import pytest
import yaml

from medcl.core.skeleton_data import fill_missing, resample, synth

TINY = ["--depth", "tiny", "--hidden", "4", "--epochs", "1", "--batch-size", "8",
        "--frames", "8", "--momentum", "0.9", "--quiet"]


def _folder(root, n=12, joints=17, nan_file=None):
    rng = np.random.default_rng(0)
    root.mkdir()
    rows = []
    for i in range(n):
        arr = rng.normal(size=(10 + i % 3, joints, 2)) + (i % 2)
        if i == nan_file:
            arr[3:5, 4] = np.nan
        np.save(root / f"s{i:02d}.npy", arr)
        rows.append({"file": f"s{i:02d}.npy", "label": "a" if i % 2 else "b"})
    pd.DataFrame(rows).to_csv(root / "labels.csv", index=False)
    return root


@pytest.mark.slow  # ~30 s on a loaded 2-core machine (imports Lightning, sklearn)
def test_synth_pretrain_then_evaluate(tmp_path, core_cli):
    run, ev = tmp_path / "run", tmp_path / "eval"
    code, out, err = core_cli(["skeleton", "pretrain", "--data", "synth", "--synth-per-class",
                               "4", "--out", run, *TINY])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "probes.csv",
                 "loss.png"):
        assert (run / name).exists(), name
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["config"]["queue_size"] == 8 and cfg["data_record"]["joints"] == 25
    assert {"nce", "dm_0_1", "dm_1_2"} <= set(pd.read_csv(run / "metrics.csv").columns)
    code, out, err = core_cli(["skeleton", "evaluate", "--model", run, "--data", "synth",
                               "--label-fraction", "0.1,1", "--finetune-epochs", "1",
                               "--out", ev, "--quiet"])
    assert code == 0, err
    table = pd.read_csv(ev / "evaluation.csv")
    assert list(table["label_fraction"]) == [0.1, 1.0]
    assert list(table["n_labelled"]) == [5, 14]  # at least one per class
    assert table[["knn", "linear", "finetune"]].notna().all().all()
    assert (ev / "evaluation.png").exists() and (ev / "model.pt").exists()


def test_folder_coco_with_nan_and_moco(tmp_path, core_cli):
    data = _folder(tmp_path / "seq", nan_file=3)
    run = tmp_path / "run"
    code, out, err = core_cli(["skeleton", "pretrain", "--data", data, "--layout", "coco17",
                               "--method", "moco", "--out", run, *TINY])
    assert code == 0, err
    report = (run / "report.md").read_text()
    assert "2 frame(s) with missing (NaN) joints in 1 file(s) were filled" in report
    assert "moco on" in report
    # refuse: exit 2, the file named, nothing written
    bad = tmp_path / "run2"
    code, out, err = core_cli(["skeleton", "pretrain", "--data", data, "--layout", "coco17",
                               "--nan", "refuse", "--out", bad, *TINY])
    assert code == 2 and "s03.npy" in err and "missing (NaN)" in err
    assert not bad.exists()


def test_layout_mismatch_and_edge_list(tmp_path, core_cli):
    data = _folder(tmp_path / "seq", joints=5)
    out = tmp_path / "run"
    code, _, err = core_cli(["skeleton", "pretrain", "--data", data, "--layout", "ntu25",
                             "--out", out, *TINY])
    assert code == 2 and "has 5 joints but layout ntu25 has 25" in err and "s00.npy" in err
    assert not out.exists()
    edges = tmp_path / "hand.txt"
    edges.write_text("# a five-joint hand\n0,1\n0,2\n0 3\n0,4\n")
    code, _, err = core_cli(["skeleton", "pretrain", "--data", data, "--layout", edges,
                             "--out", out, *TINY])
    assert code == 0, err
    ev = tmp_path / "eval"
    code, _, err = core_cli(["skeleton", "evaluate", "--model", out, "--data", data,
                             "--finetune-epochs", "0", "--out", ev, "--quiet"])
    assert code == 0, err
    edges.write_text("0,1\nzero,2\n")
    code, _, err = core_cli(["skeleton", "pretrain", "--data", data, "--layout", edges,
                             "--out", tmp_path / "r3", *TINY])
    assert code == 2 and "hand.txt" in err and "line 2" in err


def test_bad_inputs(tmp_path, core_cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = core_cli(["skeleton", "pretrain", "--data", empty, "--out",
                             tmp_path / "r", *TINY])
    assert code == 2 and "no .npy or .npz" in err
    (empty / "x.npy").write_bytes(b"not numpy")
    code, _, err = core_cli(["skeleton", "pretrain", "--data", empty, "--out",
                             tmp_path / "r", *TINY])
    assert code == 2 and "x.npy" in err
    code, _, err = core_cli(["skeleton", "evaluate", "--model", tmp_path / "nope", "--data",
                             "synth", "--out", tmp_path / "e"])
    assert code == 2 and "config.yaml is missing" in err
    assert not (tmp_path / "r").exists() and not (tmp_path / "e").exists()


def test_fill_missing_and_resample(tmp_path):
    arr = np.arange(5, dtype=float).reshape(1, 5, 1, 1).repeat(2, 3)
    arr[0, 1:3, 0, 0] = np.nan
    assert fill_missing(arr, tmp_path / "f.npy", "interpolate") == 2
    np.testing.assert_allclose(arr[0, :, 0, 0], np.arange(5.0))
    np.testing.assert_allclose(resample(arr, 9)[0, :, 0, 1], np.linspace(0, 4, 9))
    gone = np.full((1, 3, 2, 2), np.nan)
    gone[0, :, 1] = 1.0
    with pytest.raises(Exception, match="joint 0 of person 0 is missing in every frame"):
        fill_missing(gone, tmp_path / "g.npy", "interpolate")


def test_synth_is_balanced_and_finite():
    d = synth(n_per_class=3, frames=16, seed=1)
    assert d.x.shape == (15, 3, 16, 25, 1) and np.isfinite(d.x.numpy()).all()
    assert np.bincount(d.labels).tolist() == [3] * 5
    assert d.classes == ["walk", "wave", "jump", "squat", "kick"]

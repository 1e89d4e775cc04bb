"""``medcl core image pretrain`` and ``embed`` end to end on files written here, and every bad
input: exit 2, one line naming the problem, nothing written."""

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

SMALL = ["--epochs", "1", "--batch-size", "256", "--quiet"]


def _write_folder(root, sizes=((12, 12), (12, 12), (16, 12)), per_class=6, classes=("a", "b")):
    """PNG images in one subfolder per class: class a dark with a bright square, b bright."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            h, w = sizes[i % len(sizes)]
            px = rng.uniform(0, 80, (h, w)) if c == 0 else rng.uniform(150, 255, (h, w))
            px[2:6, 2:6] = 255 - px[2:6, 2:6]
            Image.fromarray(px.astype(np.uint8)).save(root / name / f"{name}{i}.png")
    return root


def test_pretrain_digits_writes_run_folder(tmp_path, core_cli):
    run = tmp_path / "run"
    code, out, err = core_cli(["image", "pretrain", "--method", "simclr", "--data",
                                "digits", "--out", run, *SMALL])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "probes.csv",
                 "loss.png"):
        assert (run / name).exists(), name
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["config"]["views"] == 2 and config["config"]["temperature"] == 0.5  # resolved
    assert config["data_record"]["channels"] == 1 and config["data_record"]["height"] == 8
    log = pd.read_csv(run / "metrics.csv")  # the per-epoch training log
    assert list(log["epoch"]) == [1] and np.isfinite(log["loss"]).all()
    probes = pd.read_csv(run / "probes.csv")
    assert list(probes["features"]) == ["encoder, random init", "encoder, simclr"]
    assert "kNN: cosine, k=20" in (run / "report.md").read_text()


def test_folder_mixed_sizes_supcon_then_embed(tmp_path, core_cli):
    data = _write_folder(tmp_path / "imgs")
    run = tmp_path / "run"
    code, out, err = core_cli(["image", "pretrain", "--method", "supcon", "--data",
                                data, "--views", "3", "--out", run, *SMALL])
    assert code == 0, err
    report = (run / "report.md").read_text()
    assert "4 of 12 images were resized to 12x12" in report
    emb = tmp_path / "emb.parquet"
    code, out, err = core_cli(["image", "embed", "--model", run, "--images",
                                data / "a", "--out", emb])
    assert code == 0, err
    table = pd.read_parquet(emb)
    assert list(table["file"]) == [f"a{i}.png" for i in range(6)]
    assert table.shape[1] == 1 + 64 and table.filter(like="z_").notna().all().all()


def test_labels_csv_for_a_flat_folder(tmp_path, core_cli):
    data = _write_folder(tmp_path / "imgs", sizes=((12, 12),))
    flat = tmp_path / "flat"
    flat.mkdir()
    rows = []
    for f in sorted(data.rglob("*.png")):
        f.rename(flat / f.name)
        rows.append({"file": f.name, "label": f.name[0]})
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    code, out, err = core_cli(["image", "pretrain", "--method", "hydra", "--data",
                                flat, "--labels", tmp_path / "labels.csv", "--out",
                                tmp_path / "run", *SMALL])
    assert code == 0, err
    assert "probe_accuracy" in pd.read_csv(tmp_path / "run" / "metrics.csv").columns


@pytest.mark.parametrize("args, words", [
    (["--method", "byol"], "'byol' is not a known method"),
    (["--method", "simclr", "--views", "1"], "--views 1"),
    (["--method", "simclr", "--views", "9"], "--views 9"),
    (["--method", "cacr", "--temperature", "0.2"], "no single temperature"),
    (["--method", "simclr", "--backbone", "vit"], "--backbone 'vit'"),
    (["--data", "digits", "--labels", "x.csv"], "--labels applies to a folder"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path, core_cli, args, words):
    run = tmp_path / "run"
    code, out, err = core_cli(["image", "pretrain", *args, "--out", run, *SMALL])
    assert code == 2
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert not run.exists()


def test_hydra_without_labels_and_empty_folder_are_refused(tmp_path, core_cli):
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(flat / "x.png")
    Image.fromarray(np.ones((8, 8), np.uint8)).save(flat / "y.png")
    code, out, err = core_cli(["image", "pretrain", "--method", "hydra", "--data",
                                flat, "--out", tmp_path / "r1", *SMALL])
    assert code == 2 and "needs labels" in err and "--labels" in err
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("no images here")
    code, out, err = core_cli(["image", "pretrain", "--data", empty, "--out",
                                tmp_path / "r2", *SMALL])
    assert code == 2 and "holds no PNG/JPG image" in err and str(empty) in err
    code, out, err = core_cli(["image", "embed", "--model", tmp_path / "r1",
                                "--images", flat, "--out", tmp_path / "e.parquet"])
    assert code == 2 and "config.yaml is missing" in err
    for name in ("r1", "r2", "e.parquet"):
        assert not (tmp_path / name).exists(), name


def test_missing_label_in_csv_names_the_file(tmp_path, core_cli):
    data = _write_folder(tmp_path / "imgs", sizes=((12, 12),))
    (tmp_path / "labels.csv").write_text("file,label\na/a0.png,a\n")
    code, out, err = core_cli(["image", "pretrain", "--data", data, "--labels",
                                tmp_path / "labels.csv", "--out", tmp_path / "r", *SMALL])
    assert code == 2 and "labels.csv" in err and "have no label" in err
    assert not (tmp_path / "r").exists()


def test_methods_lists_every_recipe(core_cli):
    from medcl.core.recipes import RECIPES

    code, out, err = core_cli(["image", "methods"])
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(RECIPES)


def test_ft_logs_and_plots_score_distributions(tmp_path, core_cli):
    data = _write_folder(tmp_path / "imgs", sizes=((12, 12),))
    run = tmp_path / "run"
    code, out, err = core_cli(["image", "pretrain", "--method", "ft", "--data", data,
                               "--epochs", "2", "--batch-size", "8", "--quiet", "--out", run])
    assert code == 0, err
    log = pd.read_csv(run / "metrics.csv")
    assert {"pos_score", "neg_score", "neg_score_var"} <= set(log.columns) and len(log) == 2
    assert log[["pos_score", "neg_score"]].abs().le(1).all().all()  # cosines
    assert (run / "ft_scores.png").exists() and "ft_scores.png" in (run / "report.md").read_text()

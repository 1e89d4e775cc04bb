"""``medcl sepclr`` end to end on files written here, and every bad input: exit 2, a message
naming the file, nothing half-written."""

import pandas as pd
import pytest

SMALL = ["--epochs", "1", "--batch-size", "16", "--encoder", "small", "--widths", "4,8,8,8",
         "--common-dim", "4", "--salient-dim", "4"]



@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from medcl.sepclr.textures import write_digits_on_textures

    return write_digits_on_textures(tmp_path_factory.mktemp("dot") / "data", n_background=40,
                                    n_target=40, size=32, seed=0)


def test_fit_embed_evaluate(dataset, tmp_path, medcl_cli):
    run_dir = tmp_path / "run"
    code, out, err = medcl_cli(["sepclr", "fit", "--background", dataset / "background", "--target",
                          dataset / "target", "--attributes", dataset / "attributes.csv",
                          "--out", run_dir, *SMALL])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "probes.csv",
                 "leakage.csv", "tsne.png"):
        assert (run_dir / name).exists(), name
    assert "Linear probes" in (run_dir / "report.md").read_text()
    log = pd.read_csv(run_dir / "metrics.csv")  # metrics.csv: the per-epoch training log
    assert list(log["epoch"]) == [1] and "loss" in log.columns

    emb = tmp_path / "emb.parquet"
    code, out, err = medcl_cli(["sepclr", "embed", "--model", run_dir, "--images",
                          dataset / "target", "--out", emb])
    assert code == 0, err
    table = pd.read_parquet(emb)
    assert len(table) == 40 and table.file.iloc[0] == "tg_00000.png"
    # the codes the probes read (the encoders' last linear layer), 4 + 4 wide
    assert {"common_3", "salient_3"} <= set(table.columns) and "salient_4" not in table.columns

    code, out, err = medcl_cli(["sepclr", "evaluate", "--model", run_dir, "--background",
                          dataset / "background", "--target", dataset / "target",
                          "--attributes", dataset / "attributes.csv", "--out",
                          tmp_path / "eval"])
    assert code == 0, err
    probes = pd.read_csv(tmp_path / "eval" / "probes.csv")
    assert set(probes.space) == {"common", "salient"} and set(probes.attribute) == {
        "texture", "digit"}
    for name in ("leakage.csv", "tsne.png", "report.md"):
        assert (tmp_path / "eval" / name).exists(), name
    assert not (tmp_path / "eval" / "metrics.csv").exists()  # an evaluation trains nothing


@pytest.mark.parametrize("method", ["simclr", "cvae"])
def test_fit_baselines(dataset, tmp_path, medcl_cli, method):
    code, out, err = medcl_cli(["sepclr", "fit", "--background", dataset / "background", "--target",
                          dataset / "target", "--method", method, "--out", tmp_path / "r",
                          *SMALL])
    assert code == 0, err
    assert (tmp_path / "r" / "model.pt").exists()


def _fit(medcl_cli, bg, tg, out, *extra):
    return medcl_cli(["sepclr", "fit", "--background", bg, "--target", tg, "--out", out, *SMALL,
                *extra])


def test_bad_inputs_exit_2_and_write_nothing(dataset, tmp_path, medcl_cli):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _fit(medcl_cli, empty, dataset / "target", out)
    assert code == 2 and "empty" in err and "both" in err

    code, _, err = _fit(medcl_cli, dataset / "background", tmp_path / "missing", out)
    assert code == 2 and "missing" in err

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scan.png").write_bytes(b"not an image")
    code, _, err = _fit(medcl_cli, dataset / "background", broken, out)
    assert code == 2 and "scan.png" in err

    attrs = pd.read_csv(dataset / "attributes.csv").iloc[:-3]
    partial = tmp_path / "partial.csv"
    attrs.to_csv(partial, index=False)
    code, _, err = _fit(medcl_cli, dataset / "background", dataset / "target", out,
                        "--attributes", partial)
    assert code == 2 and "partial.csv" in err
    assert not out.exists()  # every check ran before the run folder was created


def test_embed_and_evaluate_bad_inputs(dataset, tmp_path, medcl_cli):
    not_a_run = tmp_path / "nope"
    not_a_run.mkdir()
    code, _, err = medcl_cli(["sepclr", "embed", "--model", not_a_run, "--images",
                        dataset / "target", "--out", tmp_path / "e.parquet"])
    assert code == 2 and "config.yaml" in err
    code, _, err = medcl_cli(["sepclr", "embed", "--model", not_a_run, "--images",
                        dataset / "target", "--out", tmp_path / "e.txt"])
    assert code == 2 and ".parquet" in err
    assert not (tmp_path / "e.parquet").exists()


def test_bad_option_values(dataset, tmp_path, medcl_cli):
    code, _, err = _fit(medcl_cli, dataset / "background", dataset / "target", tmp_path / "o",
                        "--method", "pca")
    assert code == 2 and "method" in err
    code, _, err = medcl_cli(["sepclr", "benchmark", "--methods", "sepclr,pca", "--out",
                        tmp_path / "b"])
    assert code == 2 and "--methods" in err


def test_fit_with_card_writes_its_weights_and_the_authors_probes(dataset, tmp_path, medcl_cli):
    """``--card`` picks the dataset's loss weights (item 11); the report holds the authors'
    probe table beside ours (item 12), scored on a split that does not move with the seed."""
    import yaml

    splits = []
    for seed in (0, 1):
        run_dir = tmp_path / f"run{seed}"
        code, _, err = _fit(medcl_cli, dataset / "background", dataset / "target", run_dir,
                            "--card", "chexpert_subtypes", "--attributes",
                            dataset / "attributes.csv", "--seed", str(seed))
        assert code == 0, err
        cfg = yaml.safe_load((run_dir / "config.yaml").read_text())["config"]
        assert [cfg[k] for k in ("common_weight", "salient_weight", "regulariser_weight",
                                 "mi_weight")] == [1, 1, 10, 10]
        assert cfg["card"] == "chexpert_subtypes" and cfg["rotation"] == 45
        authors = pd.read_csv(run_dir / "authors_probes.csv")
        assert set(authors.metric) == {"balanced_accuracy"}
        assert set(authors.space) == {"common", "salient"}
        report = (run_dir / "report.md").read_text()
        assert "the authors' protocol" in report and "Linear probes, ours" in report
        splits.append(pd.read_csv(run_dir / "split.csv"))
    pd.testing.assert_frame_equal(splits[0], splits[1])  # a fixed test split


def test_fit_refuses_bad_card_and_weights_before_writing(dataset, tmp_path, medcl_cli):
    out = tmp_path / "out"
    code, _, err = _fit(medcl_cli, dataset / "background", dataset / "target", out,
                        "--card", "flare22")
    assert code == 2 and "flare22" in err and "protocol.sepclr" in err
    code, _, err = medcl_cli(["sepclr", "fit", "--background", dataset / "background",
                              "--target", dataset / "target", "--out", out, "--epochs", "1",
                              "--pretrained", tmp_path / "resnet18.pth"])
    assert code == 2 and "resnet18.pth" in err and "not found" in err
    assert not out.exists()

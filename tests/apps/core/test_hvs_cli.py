"""``medcl core hvs``: end to end on tiny encoders, and bad encoder specs (exit 2, no folder)."""

import pandas as pd
import pytest
import torch

FAST = ["--tests", "detection_area", "--conditions", "3", "--ratios", "3", "--steps", "2",
        "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


def test_tests_lists_nine(core_cli):
    code, out, _ = core_cli(["hvs", "tests"])
    assert code == 0 and len(out.strip().splitlines()) == 9


@pytest.mark.slow  # pretrains a core run first (~10 s CPU, more on a loaded machine)
def test_core_run_end_to_end(core_cli, tmp_path):
    run = tmp_path / "run"
    code, _, err = core_cli(["image", "pretrain", "--data", "digits", "--epochs", "1",
                             "--batch-size", "512", "--quiet", "--out", run])
    assert code == 0, err
    out = tmp_path / "eval"
    code, stdout, err = core_cli(["hvs", "run", "--encoder", f"core:{run}", "--out", out,
                                  "--tests", "detection_area", "--conditions", "3",
                                  "--ratios", "3", "--steps", "2"])
    assert code == 0, err
    assert "hvs test 1/1 detection_area" in stdout
    table = pd.read_csv(out / "hvs.csv")
    assert list(table["test"]) == ["detection_area"]
    assert {"spearman", "rmse_log10"} <= set(table.columns)
    assert (out / "hvs.md").read_text().startswith("| test")
    for name in ("config.yaml", "metrics.csv", "curves.csv", "report.md",
                 "hvs_detection_area.png"):
        assert (out / name).is_file(), name
    assert len(pd.read_csv(out / "curves.csv")) == 3


def test_torchvision_spec(core_cli, tmp_path):
    import torchvision

    weights = tmp_path / "mnv3.pth"
    torch.save(torchvision.models.mobilenet_v3_small(num_classes=10).state_dict(), weights)
    code, _, err = core_cli(["hvs", "run", "--encoder", f"torchvision:mobilenet_v3_small:{weights}",
                             "--out", tmp_path / "e", *FAST])
    # a 10-class head does not fit torchvision's 1000-class model: wrong architecture
    assert code == 2 and "do not fit" in err and not (tmp_path / "e").exists()
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), weights)
    code, _, err = core_cli(["hvs", "run", "--encoder", f"torchvision:mobilenet_v3_small:{weights}",
                             "--out", tmp_path / "e", *FAST])
    assert code == 0, err
    assert pd.read_csv(tmp_path / "e" / "hvs.csv")["conditions"].tolist() == [3]


@pytest.mark.parametrize("spec,needle", [
    ("nonsense", "KIND:ARGUMENT"),
    ("nope:x", "not known"),
    ("sam-vit-b:{tmp}/missing.pth", "not found"),
    ("sam-vit-b:{tmp}/linear.pth", "do not fit SAM's ViT-B"),
    ("sam-vit-b:{tmp}/junk.pth", "weights_only"),
    ("torchvision:resnet18", "NAME:PATH"),
    ("torchvision:no_such_net:{tmp}/linear.pth", "unknown torchvision model"),
    ("core:{tmp}", "config.yaml"),
    ("sepclr:{tmp}", "config.yaml"),
    ("dbsam:{tmp}", "config.yaml"),
])
def test_bad_specs_exit_2_and_write_nothing(core_cli, tmp_path, spec, needle):
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "linear.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    out = tmp_path / "eval"
    code, _, err = core_cli(["hvs", "run", "--encoder", spec.format(tmp=tmp_path),
                             "--out", out, *FAST])
    assert code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_options_exit_2(core_cli, tmp_path):
    code, _, err = core_cli(["hvs", "run", "--encoder", "nope:x", "--out", tmp_path / "e",
                             "--tests", "colour_blindness"])
    assert code == 2 and "unknown test" in err
    code, _, err = core_cli(["hvs", "run", "--encoder", "nope:x", "--out", tmp_path / "e",
                             "--conditions", "1"])
    assert code == 2 and "--conditions" in err

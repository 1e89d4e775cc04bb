"""``medcl core t2i`` end to end on tiny settings (pretrain -> train -> generate -> evaluate),
the GAN's SupCon mechanism, and bad inputs: exit 2, one line, nothing half-written."""

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

TINY = ["--data", "shapes", "--n-shapes", "40", "--seed", "0", "--quiet"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One encoders run and one GAN run shared by the tests of this module."""
    from medcl.core.t2i_train import EncoderConfig, GANConfig, pretrain_run, train_run

    root = tmp_path_factory.mktemp("t2i")
    pretrain_run(EncoderConfig(n_shapes=40, image_size=32, epochs=2, batch_size=16, width=8),
                 root / "enc", progress=False)
    train_run(GANConfig(encoders=str(root / "enc"), n_shapes=40, epochs=1, batch_size=16,
                        ngf=4, ndf=4), root / "gan", progress=False)
    return root


def test_pretrain_cli_writes_run_and_lowers_loss(tmp_path, core_cli):
    out = tmp_path / "enc"
    code, _, err = core_cli(["t2i", "pretrain", "--out", out, "--image-size", "32",
                             "--epochs", "3", "--batch-size", "16", *TINY])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "loss.png",
                 "retrieval.csv"):
        assert (out / name).exists(), name
    log = pd.read_csv(out / "metrics.csv")
    assert log["loss"].iloc[-1] < log["loss"].iloc[0] - 1.0  # about 29 -> 21 here
    assert {"word", "sentence", "supcon"} <= set(log.columns)
    assert yaml.safe_load((out / "config.yaml").read_text())["method"] == "t2i-encoders"


def test_train_generate_evaluate(runs, tmp_path, core_cli):
    gan = runs / "gan"
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "samples.png"):
        assert (gan / name).exists(), name
    assert np.isfinite(pd.read_csv(gan / "metrics.csv")[["d_loss", "g_adv", "supcon"]]).all().all()
    state = torch.load(gan / "model.pt", weights_only=True)
    assert any(k.startswith("generator.") for k in state)
    out = tmp_path / "gen"
    code, stdout, err = core_cli(["t2i", "generate", "--model", gan, "--text",
                                  "a small red zebra circle", "--n", "3", "--out", out])
    assert code == 0, err
    assert "unknown words mapped to <unk>: zebra" in err
    assert (out / "grid.png").exists() and len(list((out / "images").glob("*.png"))) == 3
    # evaluate on a folder written here
    data = tmp_path / "eval"
    data.mkdir()
    rows = ["file,caption,label"]
    for i in range(6):
        Image.fromarray(np.full((32, 32, 3), 30 * i, np.uint8)).save(data / f"{i}.png")
        rows.append(f"{i}.png,a {'red' if i % 2 else 'blue'} circle,{i % 2}")
    (data / "captions.csv").write_text("\n".join(rows) + "\n")
    ev = tmp_path / "ev"
    code, _, err = core_cli(["t2i", "evaluate", "--model", gan, "--data", data, "--out", ev])
    assert code == 0, err
    table = pd.read_csv(ev / "evaluation.csv")
    assert np.isfinite(table["in_domain_fd"]).all() and 0 <= table["r_precision"].iloc[0] <= 1
    assert (ev / "grid.png").exists() and "not FID" in (ev / "report.md").read_text()


def test_supcon_reaches_the_generator_only(runs):
    """One GAN step from the same start: SupCon on changes G's update; encoders stay fixed."""
    from medcl.core.t2i_data import make_shapes
    from medcl.core.t2i_train import GANConfig, load_encoders, train_gan

    enc, vocab, ecfg, _ = load_encoders(runs / "enc")
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    data = make_shapes(16, 32, 1)
    gens = [train_gan(GANConfig(supcon=on, epochs=1, batch_size=16, ngf=4, ndf=4), enc, vocab,
                      ecfg, data, progress=False).generator for on in (True, False)]
    diff = sum(float((a - b).detach().abs().sum()) for a, b in zip(
        gens[0].parameters(), gens[1].parameters(), strict=True))
    assert diff > 0
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())


def test_inception_without_torch_fidelity_exits_2(runs, tmp_path, core_cli, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # as if not installed
    weights = tmp_path / "inception.pth"
    weights.write_bytes(b"0")
    out = tmp_path / "ev"
    code, _, err = core_cli(["t2i", "evaluate", "--model", runs / "gan", "--data", "shapes",
                             "--inception", weights, "--out", out])
    assert code == 2 and "needs the torch-fidelity package" in err and not out.exists()


def test_bad_inputs_exit_2(runs, tmp_path, core_cli):
    gan = runs / "gan"
    out = tmp_path / "x"
    code, _, err = core_cli(["t2i", "generate", "--model", gan, "--text", "  ", "--out", out])
    assert code == 2 and "--text is empty" in err and not out.exists()
    code, _, err = core_cli(["t2i", "generate", "--model", runs / "enc", "--text", "a red",
                             "--out", out])
    assert code == 2 and "not `medcl core t2i train`" in err and not out.exists()
    code, _, err = core_cli(["t2i", "train", "--encoders", gan, "--out", out, *TINY])
    assert code == 2 and "config.yaml" in err and not out.exists()
    code, _, err = core_cli(["t2i", "pretrain", "--image-size", "48", "--out", out, *TINY])
    assert code == 2 and "--image-size 48" in err and not out.exists()
    code, _, err = core_cli(["t2i", "evaluate", "--model", gan, "--inception",
                             tmp_path / "none.pth", "--out", out])
    assert code == 2 and "--inception file not found" in err and not out.exists()
    code, _, err = core_cli(["t2i", "pretrain", "--data", tmp_path, "--out", out])
    assert code == 2 and "no captions.csv" in err and not out.exists()
    assert len(err.strip().splitlines()) == 1

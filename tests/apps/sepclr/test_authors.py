"""Issue 11, items 8-12: SepCLR as the authors' code runs it (encoder, augmentations, one pass
per view, per-dataset loss weights from the data cards, the authors' probes)."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from medcl.sepclr.config import SepCLRConfig

# -- item 8: encoder --------------------------------------------------------------------------


def _blocks(stage):
    return len(list(stage.children()))


def test_resnet18_encoder_as_the_authors():
    from medcl.sepclr.model import SepCLRNet

    net = SepCLRNet(3, common_dim=5, salient_dim=7, encoder="resnet18", image_size=32)
    enc = net.common_encoder
    # CIFAR stem for small images: 3x3 stride 1, no max-pool; 2 blocks per stage, 64-512
    assert enc.conv1.kernel_size == (3, 3) and enc.conv1.stride == (1, 1)
    assert isinstance(enc.maxpool, nn.Identity)
    assert [_blocks(getattr(enc, f"layer{i}")) for i in range(1, 5)] == [2, 2, 2, 2]
    assert [getattr(enc, f"layer{i}")[0].conv1.out_channels for i in range(1, 5)] == [
        64, 128, 256, 512]
    assert enc.fc.in_features == 512 and enc.fc.out_features == 5
    # the authors' projector: code -> 128 (batch norm, ReLU) -> code
    kinds = [type(m).__name__ for m in net.salient_head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert net.salient_head[0].in_features == 7 and net.salient_head[0].out_features == 128
    assert net.salient_head[3].out_features == 7
    net.eval()
    c, s = net.represent(torch.rand(2, 3, 32, 32))
    assert c.shape == (2, 5) and s.shape == (2, 7)  # the probes read the codes
    big = SepCLRNet(1, common_dim=4, salient_dim=4, encoder="resnet18", image_size=96)
    assert big.common_encoder.conv1.kernel_size == (7, 7)  # ImageNet stem above 64 px
    assert big.common_encoder.conv1.in_channels == 1
    assert not isinstance(big.common_encoder.maxpool, nn.Identity)


def test_fit_defaults_to_the_authors_encoder():
    cfg = SepCLRConfig()
    assert (cfg.encoder, cfg.views, cfg.crop_scale) == ("resnet18", "separate", 0.2)
    with pytest.raises(ValueError, match="encoder"):
        SepCLRConfig(encoder="vit")


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "resnet18.pth"
    torch.save(resnet18().state_dict(), path)
    return path


def test_pretrained_weights_read_from_the_file_never_downloaded(resnet18_file, monkeypatch):
    import torch.hub

    from medcl.sepclr.model import read_resnet18_weights, resnet18_encoder

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    weights = read_resnet18_weights(resnet18_file)
    small = resnet18_encoder(3, 32, 10, weights)
    torch.testing.assert_close(small.layer3[1].conv2.weight, weights["layer3.1.conv2.weight"])
    torch.testing.assert_close(small.bn1.running_var, weights["bn1.running_var"])
    assert small.fc.out_features == 10 and small.conv1.kernel_size == (3, 3)  # new fc and stem
    gray = resnet18_encoder(1, 128, 10, weights)
    torch.testing.assert_close(gray.conv1.weight, weights["conv1.weight"].sum(1, keepdim=True))


def test_bad_pretrained_files_name_the_file(tmp_path, resnet18_file):
    from medcl.io import InputFileError
    from medcl.sepclr.model import read_resnet18_weights

    with pytest.raises(InputFileError, match="not found"):
        read_resnet18_weights(tmp_path / "missing.pth")
    other = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3)}, other)
    with pytest.raises(InputFileError, match="not a torchvision ResNet-18") as err:
        read_resnet18_weights(other)
    assert "other.pth" in str(err.value)


# -- item 9: augmentations --------------------------------------------------------------------


def _steps(augment):
    from torchvision.transforms import v2

    out = {}
    for t in augment.transforms:
        if isinstance(t, v2.RandomApply):
            (inner,) = t.transforms
            out[type(inner).__name__] = (inner, t.p)
        else:
            out[type(t).__name__] = (t, getattr(t, "p", None))
    return out


def test_augmentations_as_the_authors():
    from medcl.sepclr.cards import apply_card
    from medcl.sepclr.train import build_augment

    steps = _steps(build_augment(SepCLRConfig(), 32))
    crop = steps["RandomResizedCrop"][0]
    assert crop.scale == (0.2, 1.0) and crop.size == (32, 32)
    assert steps["RandomHorizontalFlip"][1] == 0.5
    jitter, p = steps["ColorJitter"]
    assert p == 0.8 and jitter.brightness == (0.6, 1.4) and jitter.contrast == (0.6, 1.4)
    assert jitter.saturation == (0.6, 1.4) and jitter.hue == (-0.1, 0.1)
    assert steps["RandomGrayscale"][1] == 0.2
    assert "RandomRotation" not in steps and "RandomVerticalFlip" not in steps

    xray = _steps(build_augment(apply_card(SepCLRConfig(), "chexpert_subtypes"), 224))
    assert xray["RandomRotation"][0].degrees == [-45.0, 45.0]
    odir = _steps(build_augment(apply_card(SepCLRConfig(), "odir_subtypes"), 224))
    assert odir["RandomResizedCrop"][0].scale == (0.75, 1.0)
    assert odir["RandomVerticalFlip"][1] == 0.5 and "RandomHorizontalFlip" not in odir
    cifar = _steps(build_augment(apply_card(SepCLRConfig(), "cifar10_mnist"), 32))
    assert cifar["RandomResizedCrop"][0].size == (24, 24)  # the authors' 24-pixel views


def test_augmentations_run_on_grayscale_and_rgb():
    from medcl.sepclr.train import build_augment

    torch.manual_seed(0)
    aug = build_augment(SepCLRConfig(rotation=45.0, vflip=0.5), 32)
    for c in (1, 3):
        x = torch.rand(c, 32, 32)
        y = aug(x)
        assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0


# -- item 10: one forward pass per view ---------------------------------------------------------


def _batch_norm_sizes(method, views):
    """Train one epoch and record the batch size every batch-norm layer normalised."""
    from medcl.sepclr import train as train_mod

    seen: list[int] = []
    build = train_mod.build_model

    def spied(*args, **kwargs):
        model = build(*args, **kwargs)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.register_forward_pre_hook(
                    lambda mod, inp: seen.append(inp[0].shape[0]) if mod.training else None)
        return model

    cfg = SepCLRConfig(method=method, encoder="small", widths=[4, 4, 4, 4], common_dim=4,
                       salient_dim=4, batch_size=8, epochs=1, views=views)
    images = torch.rand(16, 1, 16, 16)
    is_target = torch.arange(16) % 2 == 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(train_mod, "build_model", spied)
        train_mod.train(cfg, images, is_target, None, progress=False, accelerator="cpu")
    return seen


@pytest.mark.parametrize("method", ["sepclr", "simclr"])
def test_batch_norm_never_sees_both_views_in_one_batch(method):
    seen = _batch_norm_sizes(method, "separate")
    assert seen and set(seen) == {8}  # a batch of 8 images: 8 rows per pass, never 16
    assert set(_batch_norm_sizes(method, "joint")) == {16}  # the former behaviour, kept


# -- item 11: per-dataset loss weights ----------------------------------------------------------


@pytest.mark.parametrize("card, weights", [
    ("cifar10_mnist", (1, 1000, 1000, 10)), ("celeba_accessories", (1, 1000, 1000, 10)),
    ("chexpert_subtypes", (1, 1, 10, 10)), ("odir_subtypes", (1, 1, 100, 10))])
def test_loss_weights_from_the_card(card, weights):
    from medcl.sepclr.cards import apply_card

    cfg = apply_card(SepCLRConfig(), card)
    assert (cfg.common_weight, cfg.salient_weight, cfg.regulariser_weight,
            cfg.mi_weight) == weights
    assert cfg.card == card


def test_loss_weights_reach_the_loss(monkeypatch):
    from medcl.contrastive import losses
    from medcl.sepclr.cards import apply_card
    from medcl.sepclr.train import _step_fn

    made = []

    class Spy(losses.SepCLRLoss):
        def __init__(self, *args):
            super().__init__(*args)
            made.append(self.weights)

    monkeypatch.setattr(losses, "SepCLRLoss", Spy)
    _step_fn(apply_card(SepCLRConfig(), "odir_subtypes"))
    assert made == [dict(common=1.0, salient=1.0, regulariser=100.0, mi=10.0)]


def test_bad_card_is_refused(tmp_path, monkeypatch):
    from medcl.io import DataCardError
    from medcl.sepclr.cards import apply_card

    with pytest.raises(DataCardError, match="unknown data card"):
        apply_card(SepCLRConfig(), "chexpert")
    with pytest.raises(DataCardError, match="no SepCLR settings"):
        apply_card(SepCLRConfig(), "flare22")
    import shutil

    from medcl.io.cards import cards_dir

    shutil.copy(cards_dir() / "odir_subtypes.yaml", tmp_path / "odir_subtypes.yaml")
    card = tmp_path / "odir_subtypes.yaml"
    card.write_text(card.read_text().replace("regulariser: 100,", "regulariser: many,"))
    monkeypatch.setenv("MEDCL_CARDS_DIR", str(tmp_path))
    with pytest.raises(DataCardError, match="loss_weights") as err:
        apply_card(SepCLRConfig(), "odir_subtypes")
    assert "odir_subtypes.yaml" in str(err.value)


# -- item 12: the authors' probes ---------------------------------------------------------------


def test_authors_probe_is_a_default_logistic_regression_on_target_codes():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    from medcl.sepclr.evaluate import authors_probe_table

    rng = np.random.default_rng(0)
    n = 400
    is_target = np.arange(n) >= 100
    y = np.where(is_target, (rng.random(n) < 0.8).astype(int), -1)  # imbalanced, target only
    tex = rng.integers(0, 3, n)
    reps = {"common": np.c_[tex + rng.normal(0, 1.0, n), rng.normal(size=(n, 3))],
            "salient": np.c_[3 * y + rng.normal(0, 3.0, n), rng.normal(size=(n, 3))]}
    attrs = pd.DataFrame({"texture": tex, "digit": y})
    idx = np.arange(n)
    tr, te = idx[idx % 3 != 0], idx[idx % 3 == 0]
    acc = authors_probe_table(reps, attrs, is_target, tr, te, "accuracy").set_index(
        ["attribute", "space"])
    bal = authors_probe_table(reps, attrs, is_target, tr, te, "balanced_accuracy").set_index(
        ["attribute", "space"])
    ttr, tte = tr[is_target[tr]], te[is_target[te]]  # target rows only
    clf = LogisticRegression().fit(reps["salient"][ttr], y[ttr])
    pred = clf.predict(reps["salient"][tte])
    assert acc.loc[("digit", "salient"), "score"] == pytest.approx(np.mean(pred == y[tte]))
    assert bal.loc[("digit", "salient"), "score"] == pytest.approx(
        balanced_accuracy_score(y[tte], pred))
    assert acc.loc[("digit", "salient"), "score"] != bal.loc[("digit", "salient"), "score"]
    assert acc.loc[("digit", "salient"), "n_test"] == len(tte)
    assert bal.loc[("digit", "salient"), "chance"] == 0.5
    assert set(acc.reset_index().space) == {"common", "salient"}


def test_card_schema_knows_every_sepclr_setting():
    """The data-card schema (shared) and the app's settings name the same fields."""
    from medcl.io.cards import CARD_SCHEMA
    from medcl.sepclr.cards import AUGMENT_FIELDS, WEIGHT_FIELDS
    from medcl.sepclr.config import PROBE_METRICS

    schema = CARD_SCHEMA["properties"]["protocol"]["properties"]["sepclr"]["properties"]
    assert set(schema["loss_weights"]["properties"]) == set(WEIGHT_FIELDS)
    assert set(AUGMENT_FIELDS) | {"crop_scale"} == set(schema["augment"]["properties"])
    assert tuple(schema["probe_metric"]["enum"]) == PROBE_METRICS

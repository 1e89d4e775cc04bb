"""Training recipe: the schedule's shape, the dataset's samples, and a short run that lowers the
loss and beats the untrained model's Dice."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medcl.dbsam.config import DBSAMConfig


def test_warmup_poly_schedule():
    from medcl.dbsam.train import warmup_poly

    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = warmup_poly(opt, warmup_steps=4, total_steps=14, power=1.0)
    lrs = []
    for _ in range(14):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    np.testing.assert_allclose(lrs[:4], [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(lrs[4:], 1.0 - np.arange(10) / 10)  # linear decay to 0


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="arch"):
        DBSAMConfig(arch="vit_x")
    with pytest.raises(ValueError, match="multiple of 16"):
        DBSAMConfig(image_size=100)
    with pytest.raises(ValueError, match="modality"):
        DBSAMConfig(modality="pet")


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    from medcl.dbsam.data import load_case
    from medcl.dbsam.phantom import write_phantoms
    from medcl.io.cases import list_cases

    images, labels = write_phantoms(tmp_path_factory.mktemp("ph"), n=4, seed=3,
                                    shape=(48, 48, 10))
    cfg = DBSAMConfig(arch="tiny", image_size=128)
    return [load_case(i, lab, cfg) for _, i, lab in list_cases(images, labels)]


def test_slice_dataset_samples(cases):
    from medcl.dbsam.data import SliceDataset

    cfg = DBSAMConfig(arch="tiny", image_size=128, min_pixels=10, jitter=5)
    ds = SliceDataset(cases, cfg)
    expected = sum(int((lab == c).sum() >= 10) for case in cases for lab in case.labels
                   for c in (1, 2))
    assert len(ds) == expected > 0
    x, box, target = ds[0]
    assert x.shape == (3, 128, 128) and box.shape == (4,) and target.shape == (1, 32, 32)
    assert set(torch.unique(target).tolist()) <= {0.0, 1.0} and target.sum() > 0
    only2 = SliceDataset(cases, DBSAMConfig(arch="tiny", image_size=128, labels=[2]))
    assert 0 < len(only2) < len(ds)


def _mean_dice(model, cases, cfg) -> float:
    from medcl.dbsam.evaluate import dice_nsd
    from medcl.dbsam.infer import SliceSegmenter, predict_label

    scores = []
    for case in cases:
        seg = SliceSegmenter(model, case)
        vol = case.label_volume()
        for code in (1, 2):
            pred = predict_label(seg, code, cfg.eval_margin)
            scores.append(dice_nsd(pred, vol == code, (1, 1, 1), 2.0)[0])
    return float(np.nanmean(scores))


@pytest.mark.slow
def test_short_training_lowers_loss_and_beats_untrained_dice(cases):
    from medcl.dbsam.data import SliceDataset
    from medcl.dbsam.model import DBSAM, build_sam
    from medcl.dbsam.train import train_model

    cfg = DBSAMConfig(arch="tiny", image_size=128, epochs=6, batch_size=8, lr=1e-3, seed=0,
                      accelerator="cpu")
    torch.manual_seed(0)
    model = DBSAM(build_sam("tiny", 128))
    train, held_out = cases[:3], cases[3:]
    before = _mean_dice(model, held_out, cfg)
    model, history = train_model(model, SliceDataset(train, cfg), cfg, None, progress=False)
    after = _mean_dice(model, held_out, cfg)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert after > before + 0.1, (before, after)

"""A short dual-path training on phantoms must beat the untrained network (Das, Ghosh, Stober,
arXiv:2309.12970): tiny network, a few small phantoms, CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medcl.pirads.config import PiradsConfig
from medcl.pirads.phantom import write_phantoms
from medcl.pirads.train import (
    build_model,
    centre_crops,
    list_cases,
    load_cases,
    split_cases,
    train_dual,
    train_single,
)

SHAPE = (48, 48, 12)  # 24 x 24 x 36 mm; a multiple of the network's (8, 8, 4) divisor


def mean_foreground_dice(model: torch.nn.Module, images: torch.Tensor,
                         labels: torch.Tensor) -> float:
    """Mean over the zones present in ``labels`` of the Dice of the fused prediction, each zone
    pooled over all volumes."""
    with torch.no_grad():
        pred = model.eval()(images)["fused"].argmax(1, keepdim=True)
    scores = []
    for zone in (1, 2, 3, 4):
        p, t = pred == zone, labels == zone
        if t.any():
            scores.append(float(2 * (p & t).sum() / (p.sum() + t.sum())))
    return sum(scores) / len(scores)


@pytest.mark.slow
def test_short_training_beats_untrained(tmp_path) -> None:
    images, labels = write_phantoms(tmp_path, n=4, seed=0, shape=SHAPE)
    cfg = PiradsConfig(epochs=25, cotrain_epochs=3, crop=list(SHAPE), filters=[4, 8, 8, 16, 16],
                       batch_size=2, lr=1e-2, seed=0, val_fraction=0.0)
    X, Y = load_cases(cfg, list_cases(images, labels), with_labels=True)
    assert set(torch.unique(Y).tolist()) == {0, 1, 2, 3, 4}
    torch.manual_seed(cfg.seed)
    Xc, Yc = centre_crops(cfg, X), centre_crops(cfg, Y)
    before = mean_foreground_dice(build_model(cfg, "dual"), Xc, Yc)
    model, histories = train_dual(cfg, X, Y, None, None)
    after = mean_foreground_dice(model, Xc, Yc)
    assert set(histories) == {"stage1", "stage2"}
    assert histories["stage1"][-1]["loss"] < histories["stage1"][0]["loss"]
    # untrained ~0.06, trained ~0.5 (PZ ~0.9, the small zones partly found)
    assert after > before + 0.25, (before, after)
    assert after > 0.35, (before, after)


def test_load_cases_reads_each_file_once_and_maps_labels(tmp_path, request) -> None:
    """Every image and label file is opened once (checked and preprocessed from that one read),
    and the label map is applied to the preprocessed labels."""

    from medcl.pirads.labels import parse_label_map

    images, labels = write_phantoms(tmp_path, n=2, seed=0, shape=SHAPE)
    cfg = PiradsConfig(crop=list(SHAPE), filters=[4, 8, 8, 16, 16])
    cases = list_cases(images, labels)
    X, Y = load_cases(cfg, cases, with_labels=True)
    loads = request.getfixturevalue("nifti_loads")  # counting starts here
    swap = parse_label_map("1:2,2:1,3:3,4:4")
    X2, Y2 = load_cases(cfg, cases, with_labels=True, label_map=swap)
    assert sorted(loads) == sorted(str(p) for _, i, lab in cases for p in (i, lab))
    torch.testing.assert_close(X2, X, rtol=0, atol=0)
    # the loaded box keeps cfg.shift voxels of margin per side for the random crop offset
    box = tuple(c + 2 * s for c, s in zip(SHAPE, cfg.shift, strict=True))
    assert X.shape == (2, 1, *box) and Y.shape == (2, 1, *box)
    torch.testing.assert_close(Y2, swap.apply(Y), rtol=0, atol=0)


def _tiny(**kw) -> PiradsConfig:
    base = {"epochs": 3, "cotrain_epochs": 2, "crop": [32, 32, 8], "filters": [4, 8, 8, 8, 8],
            "batch_size": 2, "lr": 1e-2, "seed": 0, "augment": False}
    return PiradsConfig(**(base | kw))


@pytest.fixture(scope="module")
def tiny_cases(tmp_path_factory):
    """Four small phantoms loaded with the tiny config (48 x 48 x 12 boxes)."""
    images, labels = write_phantoms(tmp_path_factory.mktemp("tiny"), n=4, seed=3, shape=SHAPE)
    return load_cases(_tiny(), list_cases(images, labels), with_labels=True)


def test_off_centre_gland_is_kept_whole(tmp_path) -> None:
    """A gland far from the centre of a large field of view lies whole in the loaded box,
    at its centre; the old field-of-view centre crop of the same size cut most of it away."""
    from helpers import write_nifti
    from medcl.pirads.phantom import make_phantom

    t2, lab, affine = make_phantom(0, shape=(64, 64, 16))
    big_t2 = np.full((200, 160, 24), float(np.median(t2)), dtype=np.float32)
    big_lab = np.zeros((200, 160, 24), dtype=np.uint8)
    at = (130, 10, 6)  # right-posterior corner of the field of view
    box = tuple(slice(a, a + n) for a, n in zip(at, t2.shape, strict=True))
    big_t2[box], big_lab[box] = t2, lab
    for d in ("images", "labels"):
        (tmp_path / d).mkdir()
    write_nifti(tmp_path / "images" / "c.nii.gz", big_t2, affine)
    write_nifti(tmp_path / "labels" / "c.nii.gz", big_lab, affine)
    cfg = _tiny(crop=[64, 64, 16])
    X, Y = load_cases(cfg, list_cases(tmp_path / "images", tmp_path / "labels"),
                      with_labels=True)
    assert int((Y > 0).sum()) == int((lab > 0).sum())  # the whole gland, no zone lost
    found = np.argwhere(Y[0, 0].numpy() > 0).mean(axis=0)
    np.testing.assert_allclose(found, (np.asarray(Y.shape[2:]) - 1) / 2, atol=2.5)
    # the field of view's centre box of the crop size (what training used before)
    centre = [n // 2 for n in big_lab.shape]
    fov = big_lab[tuple(slice(c - k // 2, c + k // 2) for c, k in zip(centre, cfg.crop,
                                                                        strict=True))]
    assert (fov > 0).sum() < 0.1 * (lab > 0).sum()


def test_training_crops_move_around_the_gland(tiny_cases) -> None:
    """Samples are crop-sized boxes at random offsets of at most ``shift`` voxels."""
    from medcl.pirads.train import ZoneCrops

    X, Y = tiny_cases
    cfg = _tiny()
    ds = ZoneCrops(cfg, X, Y)
    torch.manual_seed(0)
    seen = set()
    for _ in range(30):
        x, y = ds[0]
        assert x.shape == (1, 32, 32, 8) and y.shape == (1, 32, 32, 8)
        # find the offset: the sample equals the box of the loaded case starting there
        hits = [(i, j, k) for i in range(17) for j in range(17) for k in range(5)
                if torch.equal(X[0, :, i:i + 32, j:j + 32, k:k + 8], x)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert len(seen) > 10


def test_distance_targets_computed_once_per_case(tiny_cases, monkeypatch) -> None:
    """Both stages together compute one signed distance map per training case (the old loop
    computed them for every batch), and the cached target of a sample equals the one computed
    from that sample's labels."""
    import medcl.pirads.losses as losses
    from medcl.pirads.train import ZoneCrops, distance_targets

    X, Y = tiny_cases
    cfg = _tiny(val_fraction=0.25)
    calls = []
    real = losses._sdf_3d
    monkeypatch.setattr(losses, "_sdf_3d", lambda m, s: calls.append(1) or real(m, s))
    train_dual(cfg, X, Y, X[:1], None)
    assert len(calls) == 3  # 4 cases, 1 held out; 3 + 2 epochs of 2 batches would be 15+

    ds = ZoneCrops(cfg, X, Y, distance_targets(cfg, Y))
    torch.manual_seed(1)
    for _ in range(3):
        x, y, d = ds[1]
        if int(y[:, 0].sum() + y[:, -1].sum() + y[:, :, 0].sum() + y[:, :, -1].sum()) == 0:
            torch.testing.assert_close(d, torch.from_numpy(real((y[0] > 0).numpy(),
                                                                cfg.spacing))[None])


def test_split_cases() -> None:
    for n, frac, n_val in ((10, 0.2, 2), (4, 0.2, 1), (2, 0.2, 1), (1, 0.2, 0), (5, 0.0, 0),
                           (3, 0.9, 2)):
        train, val = split_cases(_tiny(val_fraction=frac), n)
        assert len(val) == n_val and sorted(train + val) == list(range(n))
    assert split_cases(_tiny(seed=0), 10) == split_cases(_tiny(seed=0), 10)
    assert split_cases(_tiny(seed=0), 10) != split_cases(_tiny(seed=1), 10)


def _scripted_dice(monkeypatch, scores):
    """Make validation return ``scores`` in turn; record the weights seen at each call."""
    import medcl.pirads.train as train

    seen = []
    left = list(scores)

    def fake(model, images, labels, batch_size=2):
        seen.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        s = left.pop(0)
        return {"val_dice_pz": s, "val_dice_tz": s, "val_dice_dpu": s, "val_dice_afs": s,
                "val_dice": s}

    monkeypatch.setattr(train, "zone_dice", fake)
    return seen


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_best_epoch_kept_last_saved_and_both_stages(tiny_cases, tmp_path, monkeypatch) -> None:
    """Per stage: validation Dice per zone in the history, the best epoch's weights returned
    and saved as model.pt, the last as last.pt; stage 2 starts from stage 1's best; cosine
    learning rate; the held-out case is not trained on."""
    X, Y = tiny_cases
    cfg = _tiny(val_fraction=0.25)
    seen = _scripted_dice(monkeypatch, [0.2, 0.6, 0.4, 0.3, 0.1])
    model, hist = train_dual(cfg, X, Y, None, tmp_path, keep_stage1=True)
    split = json.loads((tmp_path / "split.json").read_text())
    assert len(split["val"]) == 1 and len(split["train"]) == 3
    h1, h2 = hist["stage1"], hist["stage2"]
    assert [r["val_dice"] for r in h1] == [0.2, 0.6, 0.4] and len(h2) == 2
    assert {"val_dice_pz", "val_dice_tz", "val_dice_dpu", "val_dice_afs"} <= set(h1[0])
    assert h1[0]["lr"] > h1[1]["lr"] > h1[2]["lr"]  # cosine within the stage
    assert _same(hist["stage1_model"].state_dict(), seen[1])  # epoch 2 of stage 1
    load = lambda p: torch.load(p, weights_only=True)  # noqa: E731
    assert _same(load(tmp_path / "stage1" / "model.pt"), seen[1])
    assert _same(load(tmp_path / "stage1" / "last.pt"), seen[2])
    assert _same(model.state_dict(), seen[3])  # stage 2's best is its first epoch
    assert _same(load(tmp_path / "stage2" / "model.pt"), seen[3])
    assert _same(load(tmp_path / "last.pt"), seen[4])
    assert not _same(seen[3], seen[4])


def test_early_stopping(tiny_cases, monkeypatch) -> None:
    """With patience 2 a stage stops two epochs after its best one, in both stages and in the
    baseline."""
    X, Y = tiny_cases
    cfg = _tiny(epochs=6, cotrain_epochs=5, patience=2, val_fraction=0.25)
    seen = _scripted_dice(monkeypatch, [0.5, 0.4, 0.3] + [0.2, 0.3, 0.3, 0.1])
    model, hist = train_dual(cfg, X, Y, None, None)
    assert len(hist["stage1"]) == 3  # best epoch 1, then two without improvement
    assert len(hist["stage2"]) == 4  # best epoch 2 of the stage
    assert _same(model.state_dict(), seen[4])
    _scripted_dice(monkeypatch, [0.1, 0.2, 0.2, 0.2, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    _, h = train_single(cfg, X, Y, None)
    assert len(h) == 4


def test_progress_prints_epoch_time_and_projection(tiny_cases, capsys) -> None:
    X, Y = tiny_cases
    train_dual(_tiny(epochs=1, cotrain_epochs=1), X, Y, None, None, progress=True,
               baseline=True)
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if x.startswith("epoch 1 took"))
    assert "projected" in line and "stage 2" in line and "baseline" in line and "total" in line

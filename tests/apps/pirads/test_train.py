"""A short dual-path training on phantoms must beat the untrained network (Das, Ghosh, Stober,
arXiv:2309.12970): tiny network, a few small phantoms, CPU."""

from __future__ import annotations

import pytest
import torch

from medcl.pirads.config import PiradsConfig
from medcl.pirads.phantom import write_phantoms
from medcl.pirads.train import build_model, list_cases, load_cases, train_dual

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
                       batch_size=2, lr=1e-2, seed=0)
    X, Y = load_cases(cfg, list_cases(images, labels), with_labels=True)
    assert set(torch.unique(Y).tolist()) == {0, 1, 2, 3, 4}
    torch.manual_seed(cfg.seed)
    before = mean_foreground_dice(build_model(cfg, "dual"), X, Y)
    model, histories = train_dual(cfg, X, Y, None, None)
    after = mean_foreground_dice(model, X, Y)
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
    assert X.shape == (2, 1, *SHAPE) and Y.shape == (2, 1, *SHAPE)
    torch.testing.assert_close(Y2, swap.apply(Y), rtol=0, atol=0)

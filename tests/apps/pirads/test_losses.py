"""Tests for pirads.losses (Das, Ghosh, Stober, arXiv:2309.12970)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medcl.pirads.losses import (
    CoTrainingLoss,
    DualPathLoss,
    balance_weights,
    consistency_loss,
    sigmoid_rampup,
    signed_distance,
)
from medcl.pirads.model import DualPathNet

FILTERS = (4, 8, 8, 16, 16)


def _phantom(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    labels = torch.zeros(batch, 1, 32, 32, 8, dtype=torch.long)
    labels[:, :, 8:24, 8:16, 2:6] = 1  # PZ, posterior half
    labels[:, :, 8:24, 16:24, 2:6] = 2  # TZ
    labels[:, :, 15:17, 14:18, 2:6] = 3  # DPU
    labels[:, :, 12:20, 22:24, 3:5] = 4  # AFS
    image = labels.float() / 4 + 0.05 * torch.randn(labels.shape)
    return image, labels


def test_consistency_zero_for_identical_positive_and_symmetric() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(2, 5, 4, 4, 2), torch.randn(2, 5, 4, 4, 2)
    assert float(consistency_loss(a, a.clone())) == 0.0
    # softmax is shift-invariant: a constant offset per voxel changes nothing
    assert float(consistency_loss(a, a + 3.0)) == pytest.approx(0.0, abs=1e-12)
    ab, ba = consistency_loss(a, b), consistency_loss(b, a)
    assert float(ab) > 0
    assert float(ab) == pytest.approx(float(ba))
    with pytest.raises(ValueError):
        consistency_loss(a, b[:, :4])


def test_signed_distance_cube_sign_and_units() -> None:
    labels = np.zeros((21, 21, 21), dtype=np.int64)
    labels[5:16, 5:16, 5:16] = 2  # 11 voxels wide, half-width 5 voxels
    sdf = signed_distance(labels, (0.5, 0.5, 0.5))
    assert sdf.dtype == np.float32 and sdf.shape == labels.shape
    assert sdf[10, 10, 10] == pytest.approx(-3.0)  # (5 + 1) voxels * 0.5 mm, negative inside
    assert (sdf[labels > 0] < 0).all() and (sdf[labels == 0] > 0).all()
    assert sdf[0, 10, 10] == pytest.approx(2.5)  # 5 voxels * 0.5 mm outside
    # anisotropic spacing: the thick axis dominates distances along it
    aniso = signed_distance(labels, (0.5, 0.5, 3.0))
    assert aniso[10, 10, 0] == pytest.approx(15.0)
    assert aniso[10, 10, 10] == pytest.approx(-3.0)  # nearest exit is in-plane


def test_signed_distance_tensor_batch() -> None:
    _, labels = _phantom(batch=2)
    sdf = signed_distance(labels, (0.5, 0.5, 3.0))
    assert isinstance(sdf, torch.Tensor) and sdf.shape == labels.shape
    assert sdf.dtype == torch.float32
    assert (sdf[labels > 0] < 0).all() and (sdf[labels == 0] > 0).all()
    assert torch.equal(signed_distance(torch.zeros(1, 1, 4, 4, 4)), torch.zeros(1, 1, 4, 4, 4))


def test_dual_path_loss_finite_and_decreases() -> None:
    torch.manual_seed(0)
    net = DualPathNet(filters=FILTERS)
    image, labels = _phantom()
    sdf = signed_distance(labels, (0.5, 0.5, 3.0))
    loss_fn = DualPathLoss()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    history = []
    for _ in range(8):
        terms = loss_fn(net(image), labels, sdf)
        assert set(terms) == {"loss", "a", "b", "fused", "gland", "sdf"}
        assert all(torch.isfinite(v) for v in terms.values())
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        history.append(terms["loss"].item())
    assert history[-1] < history[0]


def test_dual_path_loss_weights_each_branch_group() -> None:
    loss_fn = DualPathLoss()
    _, labels = _phantom()
    logits = torch.zeros(1, 5, 32, 32, 8)
    out = {"a": logits, "b": logits, "fused": logits, "gland": logits[:, :1], "sdf": logits[:, :1]}
    terms = loss_fn(out, labels)  # sdf target computed from labels
    assert torch.isfinite(terms["loss"])
    # own group and background 1, the other path's zones 0.5 (never 0: both predict all)
    assert loss_fn.dice_ce_a.ce_weight.tolist() == [1, 1, 0.5, 1, 0.5]
    assert loss_fn.dice_ce_b.ce_weight.tolist() == [1, 0.5, 1, 0.5, 1]
    assert loss_fn.dice_ce.ce_weight.tolist() == [1] * 5  # the fused output: no group weights
    assert loss_fn.dice_ce_a.dice.class_weight.tolist() == [1, 0.5, 1, 0.5]  # no background
    for term in (loss_fn.dice_ce_a, loss_fn.dice_ce_b, loss_fn.dice_ce):
        assert not term.dice.include_background and term.dice.batch
    with pytest.raises(ValueError):
        DualPathLoss(other_weight=0.0)
    # frequency balancing multiplies into the CE weights only
    balanced = DualPathLoss(ce_weight=[1.0, 2.0, 3.0, 10.0, 4.0])
    assert balanced.dice_ce_a.ce_weight.tolist() == [1, 2, 1.5, 10, 2]
    assert balanced.dice_ce.ce_weight.tolist() == [1, 2, 3, 10, 4]
    assert balanced.dice_ce_a.dice.class_weight.tolist() == [1, 0.5, 1, 0.5]


def test_balance_weights_from_label_frequencies() -> None:
    labels = torch.zeros(2, 1, 10, 10, 10, dtype=torch.long)
    labels[0, :, :4] = 1  # 400 PZ voxels
    labels[0, :, 9, 9, :5] = 3  # 5 DPU voxels
    labels[1] = -1  # an unlabelled row is ignored
    w = balance_weights(labels)
    n_bg = 1000 - 400 - 5
    assert w[0] == pytest.approx(1.0)  # the most frequent class
    assert w[1] == pytest.approx((n_bg / 400) ** 0.5)
    assert w[3] == pytest.approx(min(30.0, (n_bg / 5) ** 0.5))
    assert w[2] == w[4] == 1.0  # absent classes
    assert balance_weights(labels, cap=5.0)[3] == pytest.approx(5.0)


def test_fused_term_supervises_the_fused_output() -> None:
    """The fused prediction is trained directly: a fused output that misses a zone costs more
    than one that gets it, whatever the branches say."""
    loss_fn = DualPathLoss(w_gland=0.0, w_sdf=0.0)
    _, labels = _phantom()
    good = 10.0 * torch.nn.functional.one_hot(labels[:, 0], 5).permute(0, 4, 1, 2, 3).float()
    bad = good.clone()
    bad[:, 2] = 0.0  # TZ never predicted
    aux = torch.zeros(1, 1, 32, 32, 8)
    base = {"a": good, "b": good, "gland": aux, "sdf": aux}
    t_good = loss_fn({**base, "fused": good}, labels)
    t_bad = loss_fn({**base, "fused": bad}, labels)
    assert float(t_bad["fused"]) > float(t_good["fused"]) + 0.2
    assert float(t_bad["loss"]) > float(t_good["loss"])


def test_sigmoid_rampup() -> None:
    assert sigmoid_rampup(0, 10) == pytest.approx(np.exp(-5.0))
    assert sigmoid_rampup(5, 10) == pytest.approx(np.exp(-1.25))
    assert sigmoid_rampup(10, 10) == sigmoid_rampup(99, 10) == 1.0
    assert sigmoid_rampup(0, 0) == 1.0
    values = [sigmoid_rampup(s, 20) for s in range(21)]
    assert values == sorted(values)


def test_cotraining_unlabelled_rows_only_use_consistency() -> None:
    torch.manual_seed(0)
    out = {
        k: torch.randn(2, c, 32, 32, 8)
        for k, c in (("a", 5), ("b", 5), ("fused", 5), ("gland", 1), ("sdf", 1))
    }
    loss_fn = CoTrainingLoss(w_cons=0.5)
    unlabelled = loss_fn(out, None)
    cons = consistency_loss(out["a"], out["b"])
    assert float(unlabelled["supervised"]) == 0.0
    assert float(unlabelled["loss"]) == pytest.approx(0.5 * float(cons))
    assert float(loss_fn(out, torch.full((2, 1, 32, 32, 8), -1))["loss"]) == pytest.approx(
        0.5 * float(cons)
    )
    # a mixed batch: supervised term on row 0 only, consistency on both rows
    _, labels = _phantom(batch=2)
    labels[1] = -1
    mixed = loss_fn(out, labels)
    row0 = {k: v[:1] for k, v in out.items()}
    sup = loss_fn.supervised(row0, labels[:1])["loss"]
    assert float(mixed["supervised"]) == pytest.approx(float(sup), rel=1e-5)
    assert float(mixed["loss"]) == pytest.approx(float(sup) + 0.5 * float(cons), rel=1e-5)
    # a ramped weight for this call replaces the constructor's; the supervised part stays
    ramped = loss_fn(out, labels, w_cons=0.1)
    assert float(ramped["w_cons"]) == pytest.approx(0.1)
    assert float(ramped["loss"]) == pytest.approx(float(sup) + 0.1 * float(cons), rel=1e-5)

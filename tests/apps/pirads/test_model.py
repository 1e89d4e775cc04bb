"""Tests for pirads.model (Das, Ghosh, Stober, arXiv:2309.12970)."""

from __future__ import annotations

import pytest
import torch

from medcl.pirads.model import (
    ANISOTROPIC_STRIDES,
    DualPathNet,
    SinglePathNet,
    anisotropic_unet,
    required_divisor,
)

FILTERS = (4, 8, 8, 16, 16)


@pytest.fixture(scope="module")
def net() -> DualPathNet:
    torch.manual_seed(0)
    return DualPathNet(filters=FILTERS)


def test_dual_path_output_shapes(net: DualPathNet) -> None:
    out = net(torch.randn(2, 1, 64, 64, 16))
    assert set(out) == {"a", "b", "fused", "gland", "sdf"}
    for key in ("a", "b", "fused"):
        assert out[key].shape == (2, 5, 64, 64, 16)
    assert out["gland"].shape == (2, 1, 64, 64, 16)
    assert out["sdf"].shape == (2, 1, 64, 64, 16)


def test_fusion_mixes_probabilities_favouring_each_specialist(net: DualPathNet) -> None:
    out = net(torch.randn(1, 1, 32, 32, 8))
    pa, pb, fused = out["a"].softmax(1), out["b"].softmax(1), out["fused"]
    w = net.fusion_weight.detach()
    torch.testing.assert_close(w, torch.tensor([0.5, 0.75, 0.25, 0.75, 0.25]))
    mix = w.view(1, 5, 1, 1, 1) * pa + (1 - w.view(1, 5, 1, 1, 1)) * pb
    torch.testing.assert_close(fused.exp(), mix)  # PZ, DPU lean on path A; TZ, AFS on B


def test_fusion_ignores_a_branch_logit_offset(net: DualPathNet) -> None:
    """A constant added to all of one path's logits at a voxel is invisible to that path's
    softmax (and its loss); the fused prediction must not change either, or such drift turns
    into a bias toward one zone group (the old logit mix erased whole zones this way)."""
    torch.manual_seed(1)
    a, b = torch.randn(2, 5, 8, 8, 4), torch.randn(2, 5, 8, 8, 4)
    offset = 20.0 * torch.randn(2, 1, 8, 8, 4)
    torch.testing.assert_close(net.fuse(a + offset, b), net.fuse(a, b))
    # identical paths: the fused probabilities are theirs, whatever the weights
    torch.testing.assert_close(net.fuse(a, a.clone()).softmax(1), a.softmax(1))


def test_fusion_weights_are_learnt(net: DualPathNet) -> None:
    net.zero_grad()
    net(torch.randn(1, 1, 32, 32, 8))["fused"][:, 2].mean().backward()
    assert net.fusion_logit.grad is not None and float(net.fusion_logit.grad.abs().sum()) > 0


def test_gradients_reach_both_branches_and_aux_head(net: DualPathNet) -> None:
    net.zero_grad()
    out = net(torch.randn(1, 1, 32, 32, 8))
    (out["a"].mean() + out["b"].mean() + out["gland"].mean() + out["sdf"].mean()).backward()
    for module in (net.backbone_a, net.backbone_b, net.aux, net.head_a, net.head_b):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(float(g.abs().sum()) for g in grads) > 0


def test_backbone_strides_are_anisotropic() -> None:
    unet = anisotropic_unet(filters=FILTERS)
    strides = [tuple(s) for s in unet.strides]
    assert strides[1][2] == 1 and strides[2][2] == 1  # first down-sampling levels keep z
    assert strides[1][:2] == (2, 2)
    assert [tuple(k) for k in unet.kernel_size][0] == (3, 3, 1)
    assert required_divisor(ANISOTROPIC_STRIDES) == (8, 8, 4)
    # the default crop 168 x 168 x 32 passes through
    assert all(n % d == 0 for n, d in zip((168, 168, 32), required_divisor(), strict=True))
    assert unet(torch.randn(1, 1, 32, 32, 8)).shape == (1, 5, 32, 32, 8)


def test_single_path_baseline() -> None:
    out = SinglePathNet(filters=FILTERS)(torch.randn(2, 1, 32, 32, 8))
    assert set(out) == {"fused"}
    assert out["fused"].shape == (2, 5, 32, 32, 8)


def test_rejects_bad_groups() -> None:
    with pytest.raises(ValueError):
        DualPathNet(filters=FILTERS, groups=((1, 2), (2, 4)))
    with pytest.raises(ValueError):
        DualPathNet(filters=FILTERS, groups=((1, 7), (2, 4)))

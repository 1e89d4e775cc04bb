import pytest
import torch

from medcl.contrastive.heads import MultiHead, ProjectionHead, SimCLRHead


def test_projection_head_shapes_and_layers():
    head = ProjectionHead(16, [32, 8], 4, batch_norm=True, last_batch_norm=True)
    assert head(torch.randn(5, 16)).shape == (5, 4)
    kinds = [type(m).__name__ for m in head.net]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear",
                     "BatchNorm1d"]
    assert head.net[0].bias is None  # a bias before batch norm is redundant


def test_simclr_head_is_two_layer_mlp_without_bn():
    head = SimCLRHead(12, 24, 6)
    assert [type(m).__name__ for m in head.net] == ["Linear", "ReLU", "Linear"]
    assert head(torch.randn(3, 12)).shape == (3, 6)


def test_multi_head_returns_named_outputs_and_trains():
    heads = MultiHead({"common": SimCLRHead(8, 8, 2), "salient": SimCLRHead(8, 8, 3)})
    out = heads(torch.randn(4, 8))
    assert out["common"].shape == (4, 2) and out["salient"].shape == (4, 3)
    sum(o.sum() for o in out.values()).backward()
    assert all(p.grad is not None for p in heads.parameters())


def test_bad_input_width_raises():
    with pytest.raises(ValueError, match="expects"):
        SimCLRHead(8)(torch.randn(2, 9))
    with pytest.raises(ValueError):
        ProjectionHead(0, [], 2)

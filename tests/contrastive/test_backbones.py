import pytest
import torch

from medcl.contrastive.backbones import SmallCNN


@pytest.mark.parametrize(("channels", "size"), [(1, 8), (3, 7), (1, 2)])
def test_small_cnn_shapes(channels, size):
    net = SmallCNN(channels, width=4).eval()
    assert net(torch.randn(2, channels, size, size)).shape == (2, 16) and net.out_dim == 16


def test_small_cnn_keeps_the_core_demo_state_dict_keys():
    """Checkpoints of the core demo's former DigitsEncoder load into SmallCNN."""
    keys = set(SmallCNN(1, 4).state_dict())
    assert "net.0.weight" in keys and "net.8.running_var" in keys and len(keys) == 18

import pytest
import torch

from medcl.sepclr.config import SepCLRConfig
from medcl.sepclr.model import PooledSimCLRNet, SepCLRNet, resnet_encoder
from medcl.sepclr.train import build_model


def test_sepclr_net_codes_and_representations():
    net = SepCLRNet(3, (4, 8, 8, 16), common_dim=5, salient_dim=7)
    c, s = net(torch.rand(6, 3, 32, 32))
    assert c.shape == (6, 5) and s.shape == (6, 7)
    common, salient = net.represent(torch.rand(6, 3, 32, 32))
    assert common.shape == (6, 5) and salient.shape == (6, 7)  # the codes, before projectors
    # two separate encoders: no parameter is shared
    ids = {id(p) for p in net.common_encoder.parameters()}
    assert not ids & {id(p) for p in net.salient_encoder.parameters()}


def test_pooled_simclr_splits_one_code_in_two():
    net = PooledSimCLRNet(1, (4, 8, 8, 16), common_dim=3, salient_dim=5).eval()
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 8)
    x = torch.rand(2, 1, 32, 32)
    common, salient = net.represent(x)
    assert common.shape == (2, 3) and salient.shape == (2, 5)
    torch.testing.assert_close(torch.cat([common, salient], 1), net.encoder(x))


def test_encoder_checks_widths_and_accepts_other_sizes():
    assert resnet_encoder(1, (4, 8, 8, 12))(torch.rand(2, 1, 48, 48)).shape == (2, 12)
    with pytest.raises(ValueError, match="four"):
        resnet_encoder(1, (4, 8))


@pytest.mark.parametrize("method", ["sepclr", "simclr", "cvae"])
def test_build_model_for_each_method(method):
    cfg = SepCLRConfig(method=method, encoder="small", widths=[4, 8, 8, 16], common_dim=4,
                       salient_dim=4)
    model = build_model(cfg, 1, 32)
    from medcl.sepclr.evaluate import represent

    reps = represent(model, torch.rand(3, 1, 32, 32))
    assert reps["common"].shape[0] == 3 and reps["salient"].shape[0] == 3


def test_config_rejects_unknown_method():
    with pytest.raises(ValueError, match="method"):
        SepCLRConfig(method="pca")

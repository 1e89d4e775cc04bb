import math

import pytest
import torch
import torch.nn.functional as F

from mvcnet.model import MVCNet


@pytest.mark.parametrize(
    ("n_chans", "n_times", "n_classes", "pool", "feature_dim", "d_model"),
    [
        (3, 500, 2, 125, 64 * 4, 500),
        (13, 1001, 2, 125, 64 * 8, 1000),  # BNCI2014001-like length: remainder dropped
        (22, 1000, 4, 125, 64 * 8, 1000),
        (22, 1001, 3, 100, 64 * 10, 1000),
    ],
)
def test_outputs_keys_shapes_and_feature_dim(
    n_chans, n_times, n_classes, pool, feature_dim, d_model
):
    torch.manual_seed(0)
    net = MVCNet(n_chans, n_times, n_classes, pool=pool, trans_hidden=16)
    assert net.feature_dim == feature_dim == 64 * (n_times // pool)
    assert (net.n_chans, net.n_times, net.n_outputs, net.d_model) == (
        n_chans,
        n_times,
        n_classes,
        d_model,
    )
    out = net(torch.randn(3, n_chans, n_times))
    assert set(out) == {"cnn", "proj", "logits"}
    assert out["cnn"].shape == out["proj"].shape == (3, feature_dim)
    assert out["logits"].shape == (3, n_classes)
    assert out["proj"].abs().max() <= 1.0  # Tanh output


def test_transformer_width_is_cropped_to_a_multiple_of_the_heads():
    net = MVCNet(4, 250, 2, pool=25, trans_heads=4, trans_hidden=8, n_filters=4)
    assert net.d_model == 248 and net.feature_dim == 40
    assert net.encoder.layers[0].linear1.out_features == 2 * 248
    small = MVCNet(2, 50, 2, pool=10, trans_hidden=8, n_filters=4)
    assert small.encoder.layers[0].linear1.out_features == 128  # max(2d, 128)
    assert small.projector[0].in_features == 2 * 50


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="pool"):
        MVCNet(3, 100, 2)
    with pytest.raises(ValueError, match="n_filters"):
        MVCNet(3, 500, 2, n_filters=0)
    net = MVCNet(3, 500, 2, trans_hidden=8, n_filters=4)
    with pytest.raises(ValueError, match=r"\(B, 3, 500\)"):
        net(torch.randn(2, 4, 500))
    with pytest.raises(ValueError, match="infer"):
        net.predict_logits(torch.randn(2, 3, 500), infer="transformer")


def test_predict_logits_cnn_and_fused():
    torch.manual_seed(0)
    net = MVCNet(5, 500, 3, trans_hidden=16, n_filters=8).eval()
    x = torch.randn(4, 5, 500) * 10
    with torch.no_grad():
        cnn = net.predict_logits(x)
        fused = net.predict_logits(x, infer="fused")
        out = net(x)
    assert cnn.shape == fused.shape == (4, 3)
    torch.testing.assert_close(cnn, out["logits"])
    torch.testing.assert_close(fused, net.classifier((out["cnn"] + out["proj"]) / 2))
    assert not torch.allclose(cnn, fused)


def test_gradients_reach_both_branches():
    torch.manual_seed(0)
    net = MVCNet(4, 250, 2, pool=25, trans_hidden=16, n_filters=8)
    out = net(torch.randn(6, 4, 250))
    cos = F.cosine_similarity(out["cnn"], out["proj"], dim=1).mean()
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1] * 3)) - cos
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert {n.split(".")[0] for n, _ in net.named_parameters()} == {
        "cnn",
        "encoder",
        "projector",
        "classifier",
    }


def test_learns_which_channel_carries_a_10hz_rhythm():
    """Class k = channel k carries a 10 Hz sine (plus noise); >90 % train accuracy quickly."""
    torch.manual_seed(0)
    n_per, n_classes, n_chans, sfreq, n_times = 16, 3, 4, 100.0, 200
    t = torch.arange(n_times) / sfreq
    y = torch.arange(n_classes).repeat_interleave(n_per)
    x = torch.randn(len(y), n_chans, n_times)
    phase = 2 * math.pi * torch.rand(len(y), 1)
    x[torch.arange(len(y)), y] += 3 * torch.sin(2 * math.pi * 10 * t + phase)
    net = MVCNet(n_chans, n_times, n_classes, n_filters=8, kernel_size=15, pool=25, trans_hidden=64)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    acc = 0.0
    for step in range(100):
        net.train()
        out = net(x)
        loss = (
            F.cross_entropy(out["logits"], y)
            - 0.1 * F.cosine_similarity(out["cnn"], out["proj"]).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 10 == 9:
            net.eval()
            with torch.no_grad():
                acc = (net.predict_logits(x).argmax(1) == y).float().mean().item()
            if acc > 0.9:
                break
    assert acc > 0.9, acc

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medcl.mvcnet.model import MVCNet, fuse


@pytest.mark.parametrize(
    ("n_chans", "n_times", "n_classes", "pool", "feature_dim", "d_model"),
    [
        (3, 500, 2, 125, 64 * 4, 500),
        (13, 1001, 2, 125, 64 * 8, 1000),  # BNCI2014001-like length: remainder dropped
        (22, 1000, 4, 125, 64 * 8, 1000),
        (22, 1001, 3, 100, 64 * 10, 1000),
    ],
)
@pytest.mark.parametrize("fast", [True, False])
def test_outputs_keys_shapes_and_feature_dim(
    n_chans, n_times, n_classes, pool, feature_dim, d_model, fast
):
    torch.manual_seed(0)
    net = MVCNet(n_chans, n_times, n_classes, pool=pool, trans_hidden=16, fast=fast)
    assert net.feature_dim == feature_dim == 64 * (n_times // pool)
    assert (net.n_chans, net.n_times, net.n_outputs, net.d_model) == (
        n_chans,
        n_times,
        n_classes,
        d_model,
    )
    out = net(torch.randn(3, n_chans, n_times))
    assert set(out) == {"cnn", "proj", "logits", "fused_logits"}
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
    with pytest.raises(ValueError, match="trans_hidden must be a positive integer, got 2.5"):
        MVCNet(3, 500, 2, trans_hidden=2.5)
    with pytest.raises(ValueError, match="trans_heads=8"):
        MVCNet(3, 5, 2, pool=5, trans_heads=8)
    with pytest.raises(ValueError, match="dropout"):
        MVCNet(3, 500, 2, dropout=1.0)
    net = MVCNet(3, 500, 2, trans_hidden=8, n_filters=4)
    with pytest.raises(ValueError, match=r"\(B, 3, 500\)"):
        net(torch.randn(2, 4, 500))
    with pytest.raises(ValueError, match="infer"):
        net.predict_logits(torch.randn(2, 3, 500), infer="transformer")


@pytest.mark.parametrize("fast", [True, False])
def test_predict_logits_cnn_and_fused(fast):
    torch.manual_seed(0)
    net = MVCNet(5, 500, 3, trans_hidden=16, n_filters=8, fast=fast).eval()
    with torch.no_grad():
        net.fused_classifier.weight.normal_()
    x = torch.randn(4, 5, 500) * 10
    with torch.no_grad():
        cnn = net.predict_logits(x)
        fused = net.predict_logits(x, infer="fused")
        out = net(x)
    assert cnn.shape == fused.shape == (4, 3)
    torch.testing.assert_close(cnn, out["logits"])
    cnn_norm = out["cnn"].norm(dim=1, keepdim=True)
    proj = out["proj"] * cnn_norm / out["proj"].norm(dim=1, keepdim=True)
    # the fused head (not the CNN classifier) reads the fusion
    torch.testing.assert_close(fused, net.fused_classifier((out["cnn"] + proj) / 2))
    torch.testing.assert_close(fused, out["fused_logits"])
    # the projection enters at the CNN features' scale, whatever its own
    torch.testing.assert_close(fuse(out["cnn"], 1000 * out["proj"]), fuse(out["cnn"], out["proj"]))
    assert not torch.allclose(cnn, fused)


def test_fused_head_starts_at_zero_and_draws_no_random_numbers():
    from medcl.mvcnet import model as m

    torch.manual_seed(0)
    net = MVCNet(5, 500, 3, trans_hidden=16, n_filters=8)
    after_net = torch.random.get_rng_state()
    assert not net.fused_classifier.weight.any() and not net.fused_classifier.bias.any()
    # the same construction without the fused head leaves the generator where MVCNet does, so
    # every draw under a seed (other weights, dropout, shuffling) is as before the head existed
    torch.manual_seed(0)
    cnn = m._cnn_branch(5, 8, 63, 125, 0.5)
    m._transformer_encoder(500, 2, 1)
    m._projection_head(5 * 500, 16, net.feature_dim)
    classifier = torch.nn.Linear(net.feature_dim, 3)
    cnn.apply(m._ifnet_init)
    classifier.apply(m._ifnet_init)
    assert torch.equal(torch.random.get_rng_state(), after_net)


def test_fused_head_learns_without_touching_the_network():
    from medcl.mvcnet.train import MVCNetObjective

    torch.manual_seed(0)
    net = MVCNet(4, 250, 2, pool=25, trans_hidden=16, n_filters=8).eval()  # no dropout draws
    # (at the µV scale of EEG, where the CNN features are not ~1e-4 as on unit noise)
    x, y = torch.randn(8, 4, 250) * 1e3, torch.tensor([0, 1] * 4)
    objective = MVCNetObjective()
    params = dict(net.named_parameters())
    head = [n for n in params if n.startswith("fused_classifier")]
    body = [n for n in params if n not in head]

    out = net(x)
    got = objective(out, y, 0)
    # zero-initialised head: uniform probabilities, cross-entropy log 2
    assert got["fused_ce"].item() == pytest.approx(float(np.log(2)), rel=1e-6)
    g_all = torch.autograd.grad(got["loss"], [params[n] for n in body + head], allow_unused=True)
    out = net(x)
    out.pop("fused_logits")
    ref = objective(out, y, 0)
    assert ref["fused_ce"].item() == 0.0
    g_ref = torch.autograd.grad(ref["loss"], [params[n] for n in body], allow_unused=True)
    for g, r in zip(g_all[: len(body)], g_ref, strict=True):  # the network: the authors' L
        assert (g is None) == (r is None)
        if r is not None:
            torch.testing.assert_close(g, r)
    head_grads = dict(zip(head, g_all[len(body):], strict=True))
    assert head_grads["fused_classifier.weight"].abs().sum() > 0  # (bias: balanced labels, 0)

    # a few steps on the head alone lower its loss
    opt = torch.optim.Adam(net.fused_classifier.parameters(), lr=0.01)  # as training
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = objective(net(x), y, 0)
        loss["loss"].backward()
        opt.step()
        first = loss["fused_ce"].item() if first is None else first
    assert loss["fused_ce"].item() < first - 0.05


@pytest.mark.parametrize("fast", [True, False])
def test_gradients_reach_both_branches(fast):
    torch.manual_seed(0)
    net = MVCNet(4, 250, 2, pool=25, trans_hidden=16, n_filters=8, fast=fast)
    out = net(torch.randn(6, 4, 250))
    cos = F.cosine_similarity(out["cnn"], out["proj"], dim=1).mean()
    loss = F.cross_entropy(out["logits"], torch.tensor([0, 1] * 3)) - cos
    loss.backward()
    for name, p in net.named_parameters():
        if name.startswith("fused_classifier"):  # reads detached features: not this loss's
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert {n.split(".")[0] for n, _ in net.named_parameters()} == {
        "cnn",
        "encoder",
        "projector",
        "classifier",
        "fused_classifier",
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


# ---------------------------------------------------------------- fast and plain paths
def _no_dropout(net):
    for m in net.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for layer in net.encoder.layers:
        layer.self_attn.dropout = 0.0
    return net


def _grads(out, params, seed=0):
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed), dtype=out.dtype)
    return torch.autograd.grad((out * w).sum(), params)


def _plain_twin(net):
    """A deep copy of ``net`` (same weights and buffers) on the plain ``torch.nn`` path."""
    twin = copy.deepcopy(net)
    twin.fast = False
    return twin


def test_fast_is_on_by_default_and_both_paths_hold_the_same_parameters():
    kwargs = dict(pool=25, trans_heads=4, trans_layers=2, trans_hidden=8, n_filters=4)
    torch.manual_seed(0)
    fast = MVCNet(4, 250, 2, **kwargs)
    torch.manual_seed(0)
    plain = MVCNet(4, 250, 2, fast=False, **kwargs)
    assert fast.fast is True and plain.fast is False
    a, b = fast.state_dict(), plain.state_dict()
    assert list(a) == list(b)
    for key in a:  # same seed, same construction: the very same initial weights
        assert torch.equal(a[key], b[key]), key
    # a checkpoint of one path loads into the other, strictly
    torch.manual_seed(1)
    other = MVCNet(4, 250, 2, fast=False, **kwargs)
    assert not torch.equal(other.classifier.weight, fast.classifier.weight)
    other.load_state_dict(fast.state_dict(), strict=True)
    x = torch.randn(3, 4, 250)
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(x)["logits"], fast.eval()(x)["logits"])


def _assert_close_to_scale(got, want, rtol, what):
    """``|got - want| <= rtol * max |want|``: float32 rounding is relative to a tensor's scale,
    not to each element (sums over thousands of terms, cancellations)."""
    assert got.shape == want.shape, what
    got, want = got.detach(), want.detach()
    err, scale = float((got - want).abs().max()), float(want.abs().max())
    assert err <= rtol * scale, f"{what}: {err} vs scale {scale}"


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_chans=8, n_times=500, n_classes=2, trans_hidden=32),  # kernel 63, pool 125
        dict(n_chans=5, n_times=251, n_classes=3, pool=25, kernel_size=7, n_filters=8,
             trans_hidden=16, trans_heads=4, trans_layers=2),  # cropped d_model, 2 layers
    ],
)
def test_fast_path_equals_plain_modules_in_float32(kwargs, train):
    """Same weights, same inputs: the fast path and the plain ``torch.nn`` modules give the same
    outputs, parameter and input gradients, and BatchNorm running statistics (float32)."""
    torch.manual_seed(0)
    net = _no_dropout(MVCNet(**kwargs)).train(train)
    for m in net.cnn:
        if isinstance(m, torch.nn.Conv1d):  # IFNet's init is tiny; make every path count
            torch.nn.init.normal_(m.weight)
    twin = _plain_twin(net)
    x = torch.randn(6, kwargs["n_chans"], kwargs["n_times"]) * 10
    results = []
    for model in (net, twin):
        xg = x.clone().requires_grad_()
        out = model(xg)
        params = dict(model.named_parameters())
        loss = sum((v * torch.randn(v.shape, generator=torch.Generator().manual_seed(i))).sum()
                   for i, v in enumerate(out.values()))
        grads = torch.autograd.grad(loss, [*params.values(), xg])
        results.append((out, dict(zip([*params, "input"], grads, strict=True))))
    (out, grads), (ref_out, ref_grads) = results
    for key in ("cnn", "proj", "logits"):
        _assert_close_to_scale(out[key], ref_out[key], 1e-5, key)
    # Rounding is relative to the scale of a module's gradients: in train mode the first
    # BatchNorm's weight has a gradient that is zero in exact arithmetic (the second
    # BatchNorm normalises its scale away), so it is compared at its module's scale.
    for name, want in ref_grads.items():
        module = name.rsplit(".", 1)[0]
        scale = max(float(g.abs().max()) for n, g in ref_grads.items()
                    if n.rsplit(".", 1)[0] == module)
        err = float((grads[name] - want).abs().max())
        assert err <= 5e-4 * scale, f"{name}: {err} vs scale {scale}"
    for (name, a), b in zip(net.named_buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize(("n_times", "pool", "kernel"), [(500, 125, 63), (251, 25, 7)])
def test_time_major_cnn_branch_is_the_sequential_branch(train, n_times, pool, kernel):
    torch.manual_seed(0)
    net = _no_dropout(MVCNet(5, n_times, 3, pool=pool, kernel_size=kernel, n_filters=8,
                             trans_hidden=8)).double().train(train)
    for m in net.cnn:
        if isinstance(m, torch.nn.Conv1d):  # IFNet's init is tiny; make every path count
            torch.nn.init.normal_(m.weight)
    x = torch.randn(4, 5, n_times, dtype=torch.double)
    twin = _plain_twin(net)
    fast, ref = net.cnn_features(x), twin.cnn_features(x)
    torch.testing.assert_close(ref, copy.deepcopy(net).train(train).cnn(x))  # plain = self.cnn
    torch.testing.assert_close(fast, ref)
    grads = [_grads(out, list(m.cnn.parameters())) for out, m in ((fast, net), (ref, twin))]
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-7, atol=1e-9)
    for a, b in zip(net.cnn.buffers(), twin.cnn.buffers(), strict=True):  # BN running stats
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("batch", "n_times", "n_filters"), [(16, 1000, 64), (3, 40, 4)])
def test_depthwise_time_conv_in_float32_matches_conv1d(batch, n_times, n_filters):
    """The oneDNN channels-last path (float32) against a float64 ``conv1d``, forward and both
    gradients, including a kernel longer than the trial."""
    from medcl.mvcnet._kernels import DepthwiseTimeConv

    g = torch.Generator().manual_seed(0)
    h = torch.randn(batch, n_times, n_filters, generator=g)
    w = torch.randn(n_filters, 1, 63, generator=g) * 0.1
    grad = torch.randn(batch, n_times, n_filters, generator=g)
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    ref = F.conv1d(h64.transpose(1, 2), w64, padding="same", groups=n_filters).transpose(1, 2)
    ref.backward(grad.double())
    h32, w32 = h.clone().requires_grad_(), w.clone().requires_grad_()
    out = DepthwiseTimeConv.apply(h32, w32)
    out.backward(grad)
    for got, want in ((out, ref), (h32.grad, h64.grad), (w32.grad, w64.grad)):
        assert got.dtype == torch.float32 and got.shape == want.shape
        assert (got.double() - want).abs().max() <= 1e-4 * want.abs().max()


@pytest.mark.parametrize("train", [False, True])
def test_encoder_layer_path_is_torch_transformer_encoder_layer(train):
    from medcl.mvcnet._kernels import encode, post_norm_layer

    torch.manual_seed(0)
    net = _no_dropout(MVCNet(6, 248, 2, pool=62, trans_heads=4, trans_hidden=8)).double()
    layer = net.encoder.layers[0].train(train)
    x = torch.randn(3, 6, 248, dtype=torch.double)
    params = list(layer.parameters())
    ours, ref = post_norm_layer(layer, x), layer(x)
    torch.testing.assert_close(ours, ref)
    for a, b in zip(_grads(ours, params), _grads(ref, params), strict=True):
        torch.testing.assert_close(a, b)
    net.encoder.train(train)
    torch.testing.assert_close(encode(net.encoder, x), net.encoder(x))


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_packed_attention_forward_and_backward(p):
    """Against the textbook formula with the same dropout draws, and ``sdpa_attention``."""
    from medcl.mvcnet._kernels import PackedAttention, sdpa_attention

    heads, width = 2, 12
    qkv0 = torch.randn(5, 7, 3 * width, dtype=torch.double)

    def reference(qkv):
        dh, outs = width // heads, []
        for h in range(heads):
            q, k, v = (qkv[..., i * width + h * dh: i * width + (h + 1) * dh] for i in range(3))
            w = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(dh), dim=-1)
            if p:
                w = w * torch.empty_like(w).bernoulli_(1 - p).div_(1 - p)
            outs.append(w @ v)
        return torch.cat(outs, dim=-1)

    results = []
    for fn in (lambda t: PackedAttention.apply(t, heads, p), reference):
        qkv = qkv0.clone().requires_grad_()
        torch.manual_seed(1)
        out = fn(qkv)
        results.append((out, _grads(out, [qkv])[0]))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])
    if not p:
        torch.testing.assert_close(sdpa_attention(qkv0, heads, 0.0), results[1][0])


def test_channel_maps_derive_the_input_projection_of_linear_views_exactly():
    torch.manual_seed(0)
    n_chans, b = 4, 3
    net = _no_dropout(MVCNet(n_chans, 250, 2, pool=25, trans_hidden=8, n_filters=4)).double()
    for p in net.encoder.parameters():
        if p.ndim == 1:
            torch.nn.init.normal_(p)  # non-zero biases: they must be handled, not cancelled
    twin = _plain_twin(net)
    x = torch.randn(b, n_chans, 251, dtype=torch.double)[..., :250]  # non-contiguous too
    perm, sign = [1, 0, 2, 3], [1.0, -1.0, 1.0, 0.5]
    maps = [
        (list(range(n_chans)), [-1.0] * n_chans),  # sign flip
        None,  # any other view
        ([3, 2, 1, 0], [1.0] * n_chans),  # reflection
        (perm, sign),  # general signed permutation
    ]
    chunks = [x, -x, torch.randn_like(x), x.flip(1),
              x[:, perm] * torch.tensor(sign, dtype=x.dtype)[:, None]]
    xs = torch.cat(chunks)
    params = list(net.encoder.parameters()) + list(net.projector.parameters())
    twin_params = list(twin.encoder.parameters()) + list(twin.projector.parameters())
    for train in (False, True):
        net.train(train)
        twin.train(train)
        shared, plain = net(xs, channel_maps=maps)["proj"], net(xs)["proj"]
        modules = twin(xs, channel_maps=maps)["proj"]  # the plain path ignores the maps
        torch.testing.assert_close(shared, plain)
        torch.testing.assert_close(shared, modules)
        for a, c, m in zip(_grads(shared, params), _grads(plain, params),
                           _grads(modules, twin_params), strict=True):
            torch.testing.assert_close(a, c)
            torch.testing.assert_close(a, m)
    with pytest.raises(ValueError, match="chunk 3"):
        net(xs, channel_maps=[maps[0], None, maps[3], maps[2]])
    with pytest.raises(ValueError, match="equal chunks"):
        net(xs[:-1], channel_maps=maps)
    with pytest.raises(ValueError, match="4 entries"):
        net(xs, channel_maps=[([0, 1], [1.0, 1.0]), None, None, None])
    # an input that needs its own gradient is not shared (and still correct)
    xg = xs.clone().requires_grad_()
    torch.testing.assert_close(net.eval()(xg, channel_maps=maps)["proj"], net(xs)["proj"])


def test_fast_path_trains_under_bf16_autocast_like_the_plain_modules():
    """Mixed precision (CUDA trains in bf16-mixed by default): the fast path's own autograd
    Functions run under autocast, forward and backward, and give what the plain modules give
    under the same autocast, to bfloat16's precision: outputs close, every parameter's
    gradient pointing where the float32 gradient does."""
    torch.manual_seed(0)
    n_chans, b = 4, 3
    net = _no_dropout(MVCNet(n_chans, 250, 2, pool=25, trans_hidden=8, n_filters=4)).eval()
    twin = _plain_twin(net)
    x = torch.randn(b, n_chans, 250) * 10
    maps = [(list(range(n_chans)), [-1.0] * n_chans), ([3, 2, 1, 0], [1.0] * n_chans)]
    xs = torch.cat([x, -x, x.flip(1)])

    def run(model, mixed, **kwargs):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            out = model(xs, **kwargs)
            loss = out["proj"].float().square().sum() + out["cnn"].float().square().sum()
        loss.backward()
        return out["proj"].float(), {n: p.grad.clone() for n, p in model.named_parameters()
                                     if p.grad is not None}

    fast, fast_grads = run(net, True, channel_maps=maps)
    plain, plain_grads = run(twin, True)
    _, reference = run(twin, False)
    torch.testing.assert_close(fast, plain, rtol=0.05, atol=0.05)
    assert fast_grads.keys() == plain_grads.keys() == reference.keys()
    for name, ref in reference.items():
        for grads in (fast_grads, plain_grads):
            assert grads[name].dtype == torch.float32  # float32 parameters, float32 gradients
            cos = F.cosine_similarity(grads[name].flatten(), ref.flatten(), dim=0)
            assert cos > 0.9, (name, float(cos))

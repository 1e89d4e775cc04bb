"""Tests for ``medcl.sepclr.cvae``: the contrastive VAE baseline (Abid & Zou 2019,
arXiv:1902.04601)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from medcl.sepclr.cvae import ContrastiveVAE, gaussian_kl


@pytest.fixture(autouse=True)
def one_thread():
    """Run single-threaded: on a shared 2-core runner, two busy-waiting OpenMP threads made the
    short training run below ~50x slower (minutes instead of ~3 s)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# --------------------------------------------------------------------------- KL term


def test_gaussian_kl_hand_computed() -> None:
    assert torch.equal(gaussian_kl(torch.zeros(3, 5), torch.zeros(3, 5)), torch.zeros(3))
    # mu = (1, 0), var = (1, 2): 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 2 - 1 - ln 2)
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    expected = 0.5 + 0.5 * (1.0 - math.log(2.0))
    assert gaussian_kl(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_gaussian_kl_matches_torch_distributions_values_and_gradients() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    ours = gaussian_kl(mu, logvar)
    ref = kl_divergence(
        Normal(mu, torch.exp(0.5 * logvar)), Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ).sum(-1)
    assert ours.shape == (6,)
    torch.testing.assert_close(ours, ref)
    w = torch.arange(1.0, 7.0, dtype=torch.float64)
    g_ours = torch.autograd.grad((ours * w).sum(), (mu, logvar))
    g_ref = torch.autograd.grad((ref * w).sum(), (mu, logvar))
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b)


def test_gaussian_kl_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4))


# --------------------------------------------------------------------------- shapes, API


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 64)])
def test_shapes(channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = ContrastiveVAE(channels, size, common_dim=5, salient_dim=3, width=8)
    x = torch.rand(4, channels, size, size)
    is_target = torch.tensor([True, False, True, False])
    (mu_z, lv_z), (mu_s, lv_s) = model.encode(x)
    assert mu_z.shape == lv_z.shape == (4, 5)
    assert mu_s.shape == lv_s.shape == (4, 3)
    assert model.decode(mu_z, mu_s).shape == (4, channels, size, size)
    assert model.reconstruct(x, is_target).shape == (4, channels, size, size)
    out = model(x, is_target)
    assert set(out) == {"loss", "recon", "kl_z", "kl_s"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    common, salient = model.embed(x)
    assert common.shape == (4, 5) and salient.shape == (4, 3)


@pytest.mark.parametrize("size", [36, 20, 0])
def test_image_size_must_be_multiple_of_8(size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        ContrastiveVAE(image_size=size)


def test_bad_inputs_raise() -> None:
    model = ContrastiveVAE(1, 32, width=8)
    x = torch.rand(3, 1, 32, 32)
    with pytest.raises(ValueError, match="x must have shape"):
        model(torch.rand(3, 3, 32, 32), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="is_target must have shape"):
        model(x, torch.ones(4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        model(x, torch.tensor([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="0 .background. and 1"):
        model(x, torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="beta"):
        ContrastiveVAE(beta=-1.0)
    # 0/1 integers are accepted and mean the same as bools
    model.eval()
    a = model(x, torch.tensor([1, 0, 1]))
    b = model(x, torch.tensor([True, False, True]))
    torch.testing.assert_close(a["loss"], b["loss"])


# --------------------------------------------------------------------------- loss terms


def test_loss_terms_match_a_manual_computation_in_eval_mode() -> None:
    torch.manual_seed(1)
    model = ContrastiveVAE(1, 32, common_dim=4, salient_dim=3, width=8, beta=0.5).eval()
    x = torch.rand(5, 1, 32, 32)
    is_target = torch.tensor([True, False, False, True, False])
    out = model(x, is_target)

    (mu_z, lv_z), (mu_s, lv_s) = model.encode(x)
    s_dec = mu_s.clone()
    s_dec[~is_target] = 0.0
    logits = model.decode(mu_z, s_dec)
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / 5
    kl_z = gaussian_kl(mu_z, lv_z).mean()
    kl_s = gaussian_kl(mu_s[[0, 3]], lv_s[[0, 3]]).mean()
    torch.testing.assert_close(out["recon"], recon)
    torch.testing.assert_close(out["kl_z"], kl_z)
    torch.testing.assert_close(out["kl_s"], kl_s)
    torch.testing.assert_close(out["loss"], recon + 0.5 * (kl_z + kl_s))


def test_kl_s_is_zero_without_target_rows() -> None:
    model = ContrastiveVAE(1, 32, width=8)
    out = model(torch.rand(3, 1, 32, 32), torch.zeros(3, dtype=torch.bool))
    assert out["kl_s"].item() == 0.0
    torch.testing.assert_close(out["loss"], out["recon"] + out["kl_z"])
    out["loss"].backward()  # the graph stays valid with an empty target set


def test_sampling_in_train_mode_means_in_eval_mode() -> None:
    torch.manual_seed(2)
    model = ContrastiveVAE(1, 32, width=8)
    x = torch.rand(4, 1, 32, 32)
    is_target = torch.tensor([True, False, True, False])
    assert not torch.equal(model(x, is_target)["recon"], model(x, is_target)["recon"])
    model.eval()
    assert torch.equal(model(x, is_target)["recon"], model(x, is_target)["recon"])


def test_background_rows_are_decoded_with_zero_salient_code() -> None:
    torch.manual_seed(3)
    model = ContrastiveVAE(1, 32, width=8).eval()
    x = torch.rand(6, 1, 32, 32)
    is_target = torch.tensor([True, False, True, False, False, True])
    before = model.reconstruct(x, is_target)
    with torch.no_grad():
        (mu_z, _), _ = model.encode(x)
        zero_s = model.decode(mu_z, torch.zeros(6, model.salient_dim))
        for p in model.encoder_s.parameters():
            p.add_(torch.randn_like(p))
    after = model.reconstruct(x, is_target)
    bg = ~is_target
    torch.testing.assert_close(after[bg], before[bg], rtol=0, atol=0)
    torch.testing.assert_close(before[bg], zero_s[bg])
    # ...while the target rows do depend on the salient encoder (so the check can fail).
    assert (after[is_target] - before[is_target]).abs().max() > 1e-3


@pytest.mark.parametrize("training", [True, False])
def test_embed_keeps_training_flag_and_returns_means(training: bool) -> None:
    torch.manual_seed(4)
    model = ContrastiveVAE(1, 32, width=8).train(training)
    model.encoder_s.train(not training)  # a mixed state must survive too
    flags = [m.training for m in model.modules()]
    x = torch.rand(3, 1, 32, 32)
    common, salient = model.embed(x)
    assert [m.training for m in model.modules()] == flags
    assert not common.requires_grad
    (mu_z, _), (mu_s, _) = model.eval().encode(x)
    torch.testing.assert_close(common, mu_z)
    torch.testing.assert_close(salient, mu_s)


# --------------------------------------------------------------------------- short training run


def _synthetic_set(n: int, size: int = 32, seed: int = 0):
    """Background: one Gaussian blob at a random place plus noise; target: the same plus a
    bright 6x6 square on the left or on the right (``pos`` = 0 / 1)."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    cy = (4 + 24 * torch.rand(n, generator=g))[:, None, None]
    cx = (4 + 24 * torch.rand(n, generator=g))[:, None, None]
    x = 0.8 * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 32.0)
    x = (x + 0.1 * torch.rand(n, size, size, generator=g)).unsqueeze(1)
    is_target = torch.arange(n) % 2 == 1
    pos = torch.randint(0, 2, (n,), generator=g)
    square = torch.zeros(n, 1, size, size, dtype=torch.bool)
    for i in torch.nonzero(is_target).flatten().tolist():
        c = 6 if pos[i] == 0 else 20
        square[i, 0, 12:18, c : c + 6] = True
    return x.masked_fill(square, 1.0).clamp(0, 1), is_target, pos, square


def test_short_training_separates_the_salient_pattern() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x, is_target, pos, square = _synthetic_set(256)
    torch.manual_seed(0)
    model = ContrastiveVAE(1, 32, common_dim=2, salient_dim=2, width=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        idx = torch.randint(0, 256, (64,))
        out = model(x[idx], is_target[idx])
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert model.training
    assert sum(losses[-10:]) < 0.7 * sum(losses[:10])

    # The square's position is decodable from the salient means of the target rows.
    _, salient = model.embed(x[is_target])
    acc = cross_val_score(
        LogisticRegression(max_iter=1000), salient.numpy(), pos[is_target].numpy(), cv=4
    ).mean()
    assert acc >= 0.75, acc  # chance = 0.5

    # And the decoder draws the square from s: switching s off changes the target images
    # mostly where the square is (at initialisation this ratio is about 1).
    model.eval()
    with torch.no_grad():
        (mu_z, _), (mu_s, _) = model.encode(x[is_target])
        diff = (
            torch.sigmoid(model.decode(mu_z, mu_s))
            - torch.sigmoid(model.decode(mu_z, torch.zeros_like(mu_s)))
        ).abs()
    sq = square[is_target]
    assert diff[sq].mean() > 3 * diff[~sq].mean()

"""MVCNet's objective against the authors' loss rebuilt from their description (issue 11, item 1),
the steps-per-epoch rule (item 2) and the authors' projector / pooling sizes (item 6)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from medcl.contrastive.losses import NTXentLoss
from medcl.mvcnet.config import MVCNetConfig
from medcl.mvcnet.train import (
    MVCNetObjective,
    cross_view_contrast,
    make_loader,
    model_sizes,
    steps_per_epoch,
)


# ---------------------------------------------------------------- the authors' loss, by hand
def _authors_ntxent(zis, zjs, tau):
    """NT-Xent as the authors' ``utils/contrastive_loss.NTXentLoss`` is described: ``2N`` rows
    ``cat([zjs, zis])``, cosine similarity, row ``i``'s positive ``(i + N) mod 2N``, the logits
    ``[positive, all others but itself]`` / tau, cross-entropy on class 0 summed over rows and
    divided by ``2N``. Explicit loops, no core code."""
    reps = torch.cat([zjs, zis])
    n2 = reps.shape[0]
    total = reps.new_zeros(())
    for i in range(n2):
        pos = (i + n2 // 2) % n2
        row = [F.cosine_similarity(reps[i], reps[pos], dim=0)]
        row += [F.cosine_similarity(reps[i], reps[j], dim=0) for j in range(n2)
                if j not in (i, pos)]
        logits = torch.stack(row)[None] / tau
        total = total + F.cross_entropy(logits, torch.zeros(1, dtype=torch.long), reduction="sum")
    return total / n2


def _authors_objective(out, y, n_views, tau, lam1, lam2):
    """``MVCNet_CO.py``: CE on raw + each view, CVC between ``cat((cnn_raw, z_raw))`` and
    ``cat((cnn_k, z_k))`` (batch axis) averaged over the views, CMC between all CNN features and
    all projections (batch axis)."""
    b = out["cnn"].shape[0] // (1 + n_views)

    def part(key, k):
        return out[key][k * b:(k + 1) * b]

    ce = sum(F.cross_entropy(part("logits", k), y[k * b:(k + 1) * b]) for k in range(1 + n_views))
    raw = torch.cat([part("cnn", 0), part("proj", 0)])
    cvc = sum(_authors_ntxent(raw, torch.cat([part("cnn", k), part("proj", k)]), tau)
              for k in range(1, 1 + n_views)) / n_views
    cmc = _authors_ntxent(out["cnn"], out["proj"], tau)
    return ce + lam1 * cvc + lam2 * cmc, cvc, cmc


def _batch(b=5, views=3, feat=6, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = b * (1 + views)
    out = {"logits": torch.randn(n, k, generator=g, dtype=torch.double),
           "cnn": torch.randn(n, feat, generator=g, dtype=torch.double),
           "proj": torch.tanh(torch.randn(n, feat, generator=g, dtype=torch.double))}
    return out, torch.randint(0, k, (n,), generator=g)


@pytest.mark.parametrize(("b", "views"), [(5, 3), (4, 1), (1, 2)])
def test_objective_is_the_authors_loss_values_and_gradients(b, views):
    out, y = _batch(b, views)
    leaves = {k: v.clone().requires_grad_() for k, v in out.items()}
    got = MVCNetObjective(0.2, 0.1, 0.3)(leaves, y, views)
    ref_leaves = {k: v.clone().requires_grad_() for k, v in out.items()}
    want, cvc, cmc = _authors_objective(ref_leaves, y, views, 0.2, 0.1, 0.3)
    assert got["loss"].item() == pytest.approx(want.item(), rel=1e-6, abs=1e-9)
    assert got["cvc"].item() == pytest.approx(cvc.item(), rel=1e-6, abs=1e-9)
    assert got["cmc"].item() == pytest.approx(cmc.item(), rel=1e-6, abs=1e-9)
    got["loss"].backward()
    want.backward()
    for key in out:
        torch.testing.assert_close(leaves[key].grad, ref_leaves[key].grad, rtol=1e-6, atol=1e-9)


def test_cross_view_contrast_is_not_the_feature_axis_concatenation():
    """Before issue 11 the two branches were concatenated along the feature axis (one 2F vector
    per trial): a different loss, which this value tells apart."""
    out, _ = _batch(6, 3, seed=1)
    nt = NTXentLoss(0.2)
    got = cross_view_contrast(out["cnn"], out["proj"], 3, nt)
    rep = torch.cat([out["cnn"], out["proj"]], 1).chunk(4)
    old = sum(nt(rep[0], rep[k]) for k in (1, 2, 3)) / 3
    assert abs(got.item() - old.item()) > 0.05, (got.item(), old.item())
    # and the same trial's other branch is a negative, not ignored: with each trial's CNN row
    # equal to its projection the loss rises (two equally close rows in every denominator)
    same = cross_view_contrast(out["cnn"], out["cnn"].clone(), 3, nt)
    apart = cross_view_contrast(out["cnn"], -out["cnn"], 3, nt)
    assert same.item() > apart.item() + 0.3
    with pytest.raises(ValueError, match="4 chunks"):
        cross_view_contrast(out["cnn"][:-1], out["proj"][:-1], 3, nt)


# ---------------------------------------------------------------- steps per epoch (item 2)
@pytest.mark.parametrize(("n", "batch", "sizes"), [
    (116, 64, [64, 52]),  # the authors' 116 training trials: 2 steps, none unused
    (129, 64, [64, 64]),  # a last batch of one trial is skipped (batch norm)
    (128, 64, [64, 64]),
    (130, 64, [64, 64, 2]),
    (10, 64, [10]),
    (1, 64, [1]),
])
def test_loader_keeps_the_last_partial_batch_but_not_a_single_trial(n, batch, sizes):
    data = TensorDataset(torch.arange(n))
    loader = make_loader(data, batch, generator=torch.Generator().manual_seed(0))
    got = [len(x) for (x,) in loader]
    assert sorted(got, reverse=True) == sizes
    assert len(loader) == steps_per_epoch(n, batch) == len(sizes)


def test_steps_rule_over_many_sizes():
    for n in range(1, 200):
        for batch in (2, 16, 32, 64):
            b = min(batch, n)
            want = n // b if (n % b == 1 and n > 1) else int(np.ceil(n / b))
            assert steps_per_epoch(n, batch) == want
    with pytest.raises(ValueError, match="batch_size"):
        steps_per_epoch(10, 0)


@pytest.mark.parametrize(("n", "steps"), [(116, 2), (129, 2)])
def test_train_mvcnet_takes_the_authors_steps_per_epoch(n, steps):
    """One epoch of MVCNet's own loop: 116 trials in batches of 64 take 2 steps (was 1: the
    last 52 trials were dropped), 129 take 2 (the batch of one is skipped)."""
    from medcl.mvcnet.train import train_mvcnet

    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, 3, 50)).astype(np.float32)
    y = np.arange(n) % 2
    cfg = MVCNetConfig(epochs=1, batch_size=64, n_filters=4, pool=10, kernel_size=5,
                       trans_hidden=8)
    _, history = train_mvcnet(cfg, X, y, ch_names=["C3", "Cz", "C4"], sfreq=50.0,
                              classes=["left", "right"], seed=0, accelerator="cpu")
    assert history[-1]["step"] == steps


# ---------------------------------------------------------------- sizes (item 6)
def test_projector_width_and_pooling_default_to_the_authors():
    from medcl.mvcnet.model import MVCNet, authors_pool

    auto = MVCNetConfig(trans_hidden=None, pool=None)
    assert model_sizes(auto, 1001, 250.0) == (125, 2048)  # BNCI2014001: 64 x 8 features
    assert model_sizes(auto, 2561, 512.0) == (128, 5120)  # BNCI2014002/2015001: 64 x 20
    assert MVCNetConfig().pool is None and MVCNetConfig().trans_hidden is None
    assert model_sizes(MVCNetConfig(), 2561, 512.0) == (128, 5120)
    assert model_sizes(MVCNetConfig(pool=125), 2561, 512.0) == (125, 5120)
    assert model_sizes(MVCNetConfig(trans_hidden=64, pool=None), 2561, 512.0) == (128, 64)
    assert [authors_pool(f) for f in (125.0, 250.0, 380.0, 381.0, 512.0)] == [125] * 3 + [128] * 2
    with pytest.raises(ValueError, match="needs sfreq"):
        model_sizes(auto, 1001)
    net = MVCNet(3, 2561, 2, pool=None, sfreq=512.0, n_filters=4)
    assert (net.pool, net.feature_dim, net.d_model) == (128, 4 * 20, 2560)
    assert net.projector[0].out_features == 4 * net.feature_dim == 320
    assert MVCNet(3, 500, 2, n_filters=4).projector[0].out_features == 4 * 16
    with pytest.raises(ValueError, match="needs sfreq"):
        MVCNet(3, 500, 2, pool=None)
    with pytest.raises(ValueError, match="pool"):  # too short for the pool, with the default width
        MVCNet(3, 100, 2)

"""Each loss module against the peer libraries' implementations: values and gradients."""

import math
import warnings

import pytest
import torch

from medcl.contrastive.losses import AlignUniformLoss, DCLLoss, DCLWLoss, NTXentLoss, SupConLoss
from medcl.contrastive.losses.dcl import vmf_weights

lightly_loss = pytest.importorskip("lightly.loss")
pml_losses = pytest.importorskip("pytorch_metric_learning.losses")

CASES = [(2, 3, 0.07), (7, 16, 0.2), (32, 128, 0.5), (64, 32, 0.1)]


def _views(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, d, generator=g, dtype=torch.float64).requires_grad_(True)
    b = torch.randn(n, d, generator=g, dtype=torch.float64).requires_grad_(True)
    return a, b


def _compare(ours, ref, inputs, atol=1e-5):
    lo = ours(*inputs)
    go = torch.autograd.grad(lo, [x for x in inputs if x.requires_grad])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lr = ref(*inputs)
    gr = torch.autograd.grad(lr, [x for x in inputs if x.requires_grad])
    assert lo.item() == pytest.approx(lr.item(), abs=atol)
    for x, y in zip(go, gr, strict=True):
        torch.testing.assert_close(x, y, atol=atol, rtol=1e-5)
    return lo


@pytest.mark.parametrize("chunk", [None, 5])
@pytest.mark.parametrize("n, d, tau", CASES)
def test_ntxent_matches_lightly(n, d, tau, chunk):
    _compare(NTXentLoss(tau, chunk_size=chunk), lightly_loss.NTXentLoss(tau), _views(n, d, 0))


@pytest.mark.parametrize("n, d, tau", CASES)
def test_ntxent_matches_pytorch_metric_learning(n, d, tau):
    pml = pml_losses.NTXentLoss(temperature=tau)
    labels = torch.arange(n).repeat(2)

    def ref(a, b):
        return pml(torch.cat([a, b]), labels)

    _compare(NTXentLoss(tau), ref, _views(n, d, 1))


@pytest.mark.parametrize("chunk", [None, 3])
@pytest.mark.parametrize("n, d, tau", CASES)
def test_dcl_and_dclw_match_lightly(n, d, tau, chunk):
    _compare(DCLLoss(tau, chunk_size=chunk), lightly_loss.DCLLoss(tau), _views(n, d, 2))
    _compare(DCLWLoss(tau, sigma=0.5, chunk_size=chunk),
             lightly_loss.DCLWLoss(tau, sigma=0.5), _views(n, d, 3))


def test_vmf_weights_mean_one_and_match_lightly():
    a, b = _views(9, 4, 4)
    a, b = torch.nn.functional.normalize(a, dim=1), torch.nn.functional.normalize(b, dim=1)
    from lightly.loss.dcl_loss import negative_mises_fisher_weights

    w = vmf_weights(a, b, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(w, negative_mises_fisher_weights(a, b, 0.5))
    assert w.mean().item() == pytest.approx(1.0)


@pytest.mark.parametrize("chunk", [None, 4])
@pytest.mark.parametrize("n, d, tau", CASES)
def test_supcon_matches_pytorch_metric_learning(n, d, tau, chunk):
    g = torch.Generator().manual_seed(n)
    z = torch.randn(n, d, generator=g, dtype=torch.float64).requires_grad_(True)
    labels = torch.randint(0, 3, (n,), generator=g)
    labels[0] = 99  # a singleton class: its anchor has no positive and is left out
    pml = pml_losses.SupConLoss(temperature=tau)
    lo = SupConLoss(tau, chunk_size=chunk)(z, labels)
    go = torch.autograd.grad(lo, z)[0]
    lr = pml(z, labels)
    gr = torch.autograd.grad(lr, z)[0]
    assert lo.item() == pytest.approx(lr.item(), abs=1e-5)
    torch.testing.assert_close(go, gr, atol=1e-5, rtol=1e-5)


def test_supcon_multiview_equals_flattened_views():
    z = torch.randn(6, 2, 8, dtype=torch.float64)
    y = torch.tensor([0, 1, 0, 2, 1, 2])
    flat = torch.cat([z[:, 0], z[:, 1]])
    assert SupConLoss(0.1)(z, y).item() == pytest.approx(
        SupConLoss(0.1)(flat, y.repeat(2)).item(), abs=1e-12)


def test_supcon_with_instance_labels_is_ntxent():
    a, b = _views(8, 5, 5)
    y = torch.arange(8)
    ours = SupConLoss(0.3)(torch.stack([a, b], dim=1), y)
    assert ours.item() == pytest.approx(NTXentLoss(0.3)(a, b).item(), abs=1e-12)


def test_ntxent_identical_views_closed_form():
    n = 6
    z = torch.ones(n, 3)
    assert NTXentLoss(0.5)(z, z).item() == pytest.approx(math.log(2 * n - 1), abs=1e-6)


def test_align_uniform_matches_lightly_pieces():
    a, b = _views(16, 8, 6)
    loss = AlignUniformLoss(lam=1.0)(a, b)
    an, bn = (torch.nn.functional.normalize(x, dim=1) for x in (a, b))
    align = (an - bn).norm(dim=1).pow(2).mean()

    def unif(x):
        return torch.pdist(x).pow(2).mul(-2).exp().mean().log()

    want = align + 0.5 * (unif(an) + unif(bn))
    assert loss.item() == pytest.approx(want.item(), abs=1e-10)


@pytest.mark.parametrize("cls", [NTXentLoss, DCLLoss, DCLWLoss])
def test_mismatched_views_raise(cls):
    with pytest.raises(ValueError, match="views"):
        cls()(torch.randn(4, 3), torch.randn(5, 3))


def test_loss_trains_separable_toy():
    """A short training run: NT-Xent pulls two noisy views of each point together."""
    torch.manual_seed(0)
    x = torch.randn(64, 10)
    net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = NTXentLoss(0.2)
    losses = []
    for _ in range(60):
        v0, v1 = x + 0.3 * torch.randn_like(x), x + 0.3 * torch.randn_like(x)
        loss = loss_fn(net(v0), net(v1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5

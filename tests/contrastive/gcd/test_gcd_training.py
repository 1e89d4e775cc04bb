"""A short training lowers BaCon's soft SupCon and its classifier objective (fixed tiny batch,
three seeds; float64, so the margins do not hang on a CPU's rounding)."""

import pytest
import torch
import torch.nn.functional as F

from medcl.contrastive.gcd import entropy_regulariser, self_distillation, soft_supcon

pytestmark = pytest.mark.usefixtures("one_thread")

N, K, DIM = 16, 4, 16


def _batch(seed):
    """Two noisy views of ``N`` random inputs and sharp soft labels over ``K`` classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, DIM, generator=g, dtype=torch.float64)
    views = torch.cat([x + 0.1 * torch.randn(N, DIM, generator=g, dtype=torch.float64)
                       for _ in range(2)])
    soft = torch.softmax(8 * torch.randn(N, K, generator=g, dtype=torch.float64), dim=1)
    return g, views, soft


def _train(loss_fn, w, steps=60, lr=0.05):
    opt = torch.optim.Adam([w], lr=lr)
    values = []
    for _ in range(steps):
        loss = loss_fn(w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(float(loss.detach()))
    return values[0], sum(values[-5:]) / 5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_supcon_training_lowers_loss(seed):
    g, views, soft = _batch(seed)
    w = (0.1 * torch.randn(DIM, 8, generator=g, dtype=torch.float64)).requires_grad_()
    first, last = _train(lambda w: soft_supcon(F.normalize(views @ w, dim=1), soft,
                                               temperature=0.1), w)
    assert last < 0.5 * first, (first, last)  # measured: about 0.29 x


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classifier_objective_training_lowers_loss(seed):
    """Self-distillation + the count-reweighted entropy regulariser + CE on labelled images
    (BaCon's classifier branch, weights 0.65 / 0.35) on a linear cosine classifier."""
    g, views, soft = _batch(seed)
    counts = torch.tensor([8.0, 4.0, 2.0, 1.0], dtype=torch.float64)
    labelled = torch.arange(N) < N // 4
    y = soft.argmax(1)

    def objective(w):
        logits = F.normalize(views, dim=1) @ F.normalize(w, dim=0)
        ce = F.cross_entropy(logits[labelled.repeat(2)] / 0.1, y[labelled].repeat(2))
        return (0.65 * (self_distillation(logits, 0.05) + entropy_regulariser(logits, counts))
                + 0.35 * ce)

    w = (0.1 * torch.randn(DIM, K, generator=g, dtype=torch.float64)).requires_grad_()
    first, last = _train(objective, w)
    assert last < 0.5 * first, (first, last)

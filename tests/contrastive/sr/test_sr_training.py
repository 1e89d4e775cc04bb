"""A short training lowers PCL-SR's contrastive term: the SR features move to the positives'
(fixed tiny batch, three seeds, float64)."""

import math

import pytest
import torch

from medcl.contrastive.sr import contrast_loss

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contrast_training_lowers_loss(seed):
    g = torch.Generator().manual_seed(seed)

    def feats():
        return [torch.randn(4, 8, 6, 6, generator=g, dtype=torch.float64),
                torch.randn(4, 16, 3, 3, generator=g, dtype=torch.float64)]

    pos, neg = [feats(), feats()], [feats(), feats()]
    sr = [f.requires_grad_() for f in feats()]
    opt = torch.optim.Adam(sr, lr=0.05)
    values = []
    for _ in range(60):
        loss = contrast_loss(sr, pos, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(float(loss.detach()))
    # tau = 1 bounds each logit to [-1, 1]: from about log 3 the floor is log(1 + 2 e^-2)
    assert values[0] == pytest.approx(math.log(3), abs=0.15)
    assert sum(values[-5:]) / 5 < 0.6 * values[0], values[::10]

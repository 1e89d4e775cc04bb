"""DF-GAN-style generator and discriminator shapes (64 and 256), the MA-GP on a hand case,
and the hinge losses."""

import pytest
import torch
from torch import nn

from medcl.contrastive.text_image import (
    Discriminator,
    Generator,
    d_hinge_loss,
    g_hinge_loss,
    ma_gradient_penalty,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("size", [64, 256])
def test_shapes(size):
    torch.manual_seed(0)
    gen = Generator(cond_dim=16, nz=8, ngf=4 if size == 256 else 8, size=size)
    disc = Discriminator(cond_dim=16, ndf=4 if size == 256 else 8, size=size)
    z, s = torch.randn(2, 8), torch.randn(2, 16)
    img = gen(z, s)
    assert img.shape == (2, 3, size, size) and img.abs().max() <= 1.0
    assert disc.features(img).shape[-2:] == (4, 4)
    assert disc(img, s).shape == (2,)


def test_bad_size():
    with pytest.raises(ValueError, match="power of two"):
        Generator(cond_dim=4, size=48)


class _Linear(nn.Module):
    """D(x, e) = <w, x> + <u, e>: its gradients are w and u for every sample."""

    def __init__(self, w, u):
        super().__init__()
        self.w, self.u = w, u

    def forward(self, x, e):
        return (x.flatten(1) * self.w).sum(1) + (e * self.u).sum(1)


def test_ma_gp_hand_case():
    w = torch.tensor([3.0, 0.0, 4.0, 0.0]).view(1, 1, 2, 2).flatten()  # |w| = 5
    u = torch.tensor([0.0, 2.0])                                        # |u| = 2
    disc = _Linear(w, u)
    x, e = torch.randn(3, 1, 2, 2), torch.randn(3, 2)
    assert ma_gradient_penalty(disc, x, e, k=2, p=6).item() == pytest.approx(2 * 7.0 ** 6)
    joint = ma_gradient_penalty(disc, x, e, k=2, p=6, joint=True).item()
    assert joint == pytest.approx(2 * 29.0 ** 3, rel=1e-5)  # (sqrt(25 + 4))^6


def test_ma_gp_reaches_discriminator_weights():
    torch.manual_seed(0)
    disc = Discriminator(cond_dim=6, ndf=4, size=16)
    gp = ma_gradient_penalty(disc, torch.randn(2, 3, 16, 16), torch.randn(2, 6))
    gp.backward()
    assert disc.stem.weight.grad is not None and torch.isfinite(disc.stem.weight.grad).all()


def test_hinge_losses():
    real, fake, mis = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0]), torch.tensor([1.0, -1.0])
    # relu(1 - real) = (0, 0.5); relu(1 + fake) = (0, 1); relu(1 + mis) = (2, 0)
    assert d_hinge_loss(real, fake, mis).item() == pytest.approx(0.25 + 0.5 * (0.5 + 1.0))
    assert g_hinge_loss(fake).item() == pytest.approx(1.0)

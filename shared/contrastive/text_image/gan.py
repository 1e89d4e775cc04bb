"""A light one-stage text-to-image GAN after DF-GAN (Tao et al. 2022, "DF-GAN: A Simple and
Effective Baseline for Text-to-Image Synthesis", CVPR).

- Generator: noise -> 4x4 map -> up-sampling residual blocks whose normalisation-free
  *deep fusion* blocks apply two text-conditioned affine transforms
  ``Affine(x | c) = gamma(c) * x + beta(c)`` (channel-wise, gamma and beta MLPs of the condition
  ``c = [sentence, noise]``, §3.3) -> RGB in [-1, 1].
- Discriminator: down-sampling residual blocks to a 4x4 map, the sentence replicated over it,
  two convolutions to one logit (one-way output, §3.2).
- Losses (eqs. 1-2 as we read the CVPR version, hinge):
  ``L_D = E[relu(1 - D(x, e))] + 1/2 E[relu(1 + D(G(z), e))] + 1/2 E[relu(1 + D(x, e_hat))]
  + k E[(||grad_x D(x, e)|| + ||grad_e D(x, e)||)^p]`` with mismatched text ``e_hat`` and the
  matching-aware gradient penalty (MA-GP, k = 2, p = 6);
  ``L_G = -E[D(G(z), e)]``.

Departures: widths are small (``ngf = ndf = 32`` by default here, 16 in the app) for CPU
training; the MA-GP follows
the paper's sum of the two gradient norms, whereas the authors' code takes the norm of the
concatenated gradient (``joint=True`` gives that form); the number of blocks follows the image
size (4 -> ``size``), so one class serves 64x64 and 256x256.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _n_up(size: int) -> int:
    n = int(round(math.log2(size / 4)))
    if size < 8 or 4 * 2 ** n != size:
        raise ValueError(f"image size must be 4 x a power of two >= 8 (64, 128, 256), got {size}")
    return n


def _widths(base: int, n: int) -> list[int]:
    """Channels from the 4x4 map (index 0) to the full-size map (index n)."""
    return [base * min(8, 2 ** (n - i)) for i in range(n + 1)]


class Affine(nn.Module):
    """``gamma(c) * x + beta(c)`` per channel (DF-GAN §3.3); starts as the identity."""

    def __init__(self, cond_dim: int, channels: int, hidden: int = 64) -> None:
        super().__init__()
        self.gamma = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(inplace=True),
                                   nn.Linear(hidden, channels))
        self.beta = nn.Sequential(nn.Linear(cond_dim, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels))
        for mlp, bias in ((self.gamma, 1.0), (self.beta, 0.0)):
            nn.init.zeros_(mlp[-1].weight)
            nn.init.constant_(mlp[-1].bias, bias)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        return self.gamma(c)[:, :, None, None] * x + self.beta(c)[:, :, None, None]


class FusionBlock(nn.Module):
    """Deep fusion: Affine -> LeakyReLU -> Affine -> LeakyReLU."""

    def __init__(self, cond_dim: int, channels: int) -> None:
        super().__init__()
        self.a1, self.a2 = Affine(cond_dim, channels), Affine(cond_dim, channels)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        x = F.leaky_relu(self.a1(x, c), 0.2)
        return F.leaky_relu(self.a2(x, c), 0.2)


class UpBlock(nn.Module):
    """x2 up-sampling, then fuse -> conv -> fuse -> conv, plus a (1x1) shortcut."""

    def __init__(self, cond_dim: int, cin: int, cout: int) -> None:
        super().__init__()
        self.f1, self.c1 = FusionBlock(cond_dim, cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.f2, self.c2 = FusionBlock(cond_dim, cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        h = self.c2(self.f2(self.c1(self.f1(x, c)), c))
        return self.skip(x) + h


class Generator(nn.Module):
    """``forward(z (B, nz), sentence (B, cond))`` -> images (B, 3, size, size) in [-1, 1]."""

    def __init__(self, cond_dim: int, nz: int = 100, ngf: int = 32, size: int = 64,
                 channels: int = 3) -> None:
        super().__init__()
        n = _n_up(size)
        w = _widths(ngf, n)
        self.nz, self.size = nz, size
        self.fc = nn.Linear(nz, w[0] * 16)
        self.blocks = nn.ModuleList(UpBlock(cond_dim + nz, w[i], w[i + 1]) for i in range(n))
        self.to_rgb = nn.Sequential(nn.LeakyReLU(0.2), nn.Conv2d(w[-1], channels, 3, 1, 1),
                                    nn.Tanh())

    def forward(self, z: Tensor, sentence: Tensor) -> Tensor:
        c = torch.cat([sentence, z], dim=1)
        x = self.fc(z).view(z.shape[0], -1, 4, 4)
        for block in self.blocks:
            x = block(x, c)
        return self.to_rgb(x)


class DownBlock(nn.Module):
    """Residual down-sampling: conv4x4/2 -> LReLU -> conv3x3 -> LReLU, shortcut 1x1 + pool,
    the residual scaled by a learned gamma (zero at start) as in DF-GAN's code."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.res = nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
                                 nn.Conv2d(cout, cout, 3, 1, 1), nn.LeakyReLU(0.2, inplace=True))
        self.skip = nn.Conv2d(cin, cout, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.skip(x), 2) + self.gamma * self.res(x)


class Discriminator(nn.Module):
    """``features(x)`` -> (B, C, 4, 4); ``logits(features, sentence)`` -> (B,);
    ``forward(x, sentence)`` does both."""

    def __init__(self, cond_dim: int, ndf: int = 32, size: int = 64, channels: int = 3) -> None:
        super().__init__()
        n = _n_up(size)
        w = _widths(ndf, n)[::-1]  # full size -> 4x4
        self.stem = nn.Conv2d(channels, w[0], 3, 1, 1)
        self.blocks = nn.Sequential(*(DownBlock(w[i], w[i + 1]) for i in range(n)))
        self.joint = nn.Sequential(nn.Conv2d(w[-1] + cond_dim, 2 * ndf, 3, 1, 1),
                                   nn.LeakyReLU(0.2, inplace=True), nn.Conv2d(2 * ndf, 1, 4))

    def features(self, x: Tensor) -> Tensor:
        return self.blocks(self.stem(x))

    def logits(self, h: Tensor, sentence: Tensor) -> Tensor:
        s = sentence[:, :, None, None].expand(-1, -1, h.shape[2], h.shape[3])
        return self.joint(torch.cat([h, s], dim=1)).flatten()

    def forward(self, x: Tensor, sentence: Tensor) -> Tensor:
        return self.logits(self.features(x), sentence)


def ma_gradient_penalty(disc: nn.Module, real: Tensor, sentence: Tensor, k: float = 2.0,
                        p: float = 6.0, joint: bool = False) -> Tensor:
    """Matching-aware gradient penalty on real images and their matching text (DF-GAN eq. 1):
    ``k * mean_i (||grad_x D(x_i, e_i)|| + ||grad_e D(x_i, e_i)||)^p``; ``joint=True``:
    ``k * mean_i ||[grad_x, grad_e]||^p`` (the authors' code). Keeps the graph (it is a loss)."""
    x = real.detach().requires_grad_(True)
    e = sentence.detach().requires_grad_(True)
    out = disc(x, e)
    gx, ge = torch.autograd.grad(out.sum(), (x, e), create_graph=True)
    gx, ge = gx.flatten(1), ge.flatten(1)
    if joint:
        norm = torch.cat([gx, ge], dim=1).pow(2).sum(1).add(1e-12).sqrt()
    else:
        norm = gx.pow(2).sum(1).add(1e-12).sqrt() + ge.pow(2).sum(1).add(1e-12).sqrt()
    return k * norm.pow(p).mean()


def d_hinge_loss(real: Tensor, fake: Tensor, mismatched: Tensor) -> Tensor:
    """DF-GAN eq. 1 without the penalty: ``mean relu(1 - real) + (mean relu(1 + fake) +
    mean relu(1 + mismatched)) / 2`` of the discriminator's logits."""
    return F.relu(1 - real).mean() + 0.5 * (F.relu(1 + fake).mean()
                                            + F.relu(1 + mismatched).mean())


def g_hinge_loss(fake: Tensor) -> Tensor:
    """DF-GAN eq. 2: ``-mean D(G(z), e)``."""
    return -fake.mean()

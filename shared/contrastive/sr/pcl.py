"""PCL-SR's contrastive term (Wu, Jiang, Liu, Ji, Zhang, "A Practical Contrastive Learning
Framework for Single-Image Super-Resolution", IEEE TNNLS 2023, arXiv:2111.13924, sec. III;
authors' code Aitical/PCL-SISR ``src/loss/cl.py``).

Positives of the super-resolved image ``SR`` are the ground truth ``HR`` and a sharpened ``HR``
(unsharp masking); negatives are the bicubically upsampled low-resolution input and a blurred
``HR`` (Gaussian). Images are embedded by a discriminator ``phi`` that is itself trained
contrastively (``HR`` vs sharpened ``HR`` against the negatives and the detached ``SR``), and
at each of its feature levels ``l`` the similarity of two images is the mean over positions of
the cosine of their channel vectors,

.. math::

    s(a, b) = \\frac{1}{HW} \\sum_{p} \\frac{\\langle \\phi_l(a)_p, \\phi_l(b)_p \\rangle}
                                          {\\|\\phi_l(a)_p\\| \\|\\phi_l(b)_p\\|},

and each positive ``b^+`` gives the InfoNCE term (the authors' ``nce``: cross-entropy over
``[s(SR, b^+), s(SR, b^-_1), ...]``, no temperature, i.e. ``tau = 1``)

.. math::

    \\ell = -\\log \\frac{e^{s(SR, b^+) / \\tau}}{e^{s(SR, b^+) / \\tau}
                        + \\sum_k e^{s(SR, b^-_k) / \\tau}},

averaged over positives and levels. ``s`` is an inner product of the per-position-normalised
features flattened and divided by ``sqrt(HW)``, so every term is the core kernel
:func:`medcl.contrastive.functional.info_nce` with a dense mask (anchor ``i`` against its own
positive and negatives only). The generator's total loss is ``L1 + lambda x contrast`` with
``lambda = 5`` (see :mod:`medcl.core.sr_train` for the units).

Departures: the discriminator is a small 3-level CNN (the paper's is a VGG-style discriminator
and the public code at this commit embeds with a frozen VGG-19); sharpening and blurring use
fixed strengths (unsharp amount 1, sigma 1; Gaussian sigma 1.5) where the paper draws them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcl.contrastive.functional import info_nce

__all__ = ["Discriminator", "blur", "contrast_loss", "discriminator_loss", "negatives",
           "positives", "sharpen", "upsample"]


def _gaussian_kernel(sigma: float, channels: int, device, dtype) -> Tensor:
    radius = max(1, int(round(3 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    k = g[:, None] * g[None, :]
    return k.expand(channels, 1, *k.shape).contiguous()


def blur(x: Tensor, sigma: float = 1.5) -> Tensor:
    """Gaussian blur (separable kernel of radius ``3 sigma``, reflect padding), ``(N, C, H, W)``."""
    k = _gaussian_kernel(sigma, x.shape[1], x.device, x.dtype)
    r = k.shape[-1] // 2
    return F.conv2d(F.pad(x, (r, r, r, r), mode="reflect"), k, groups=x.shape[1])


def sharpen(x: Tensor, amount: float = 1.0, sigma: float = 1.0) -> Tensor:
    """Unsharp masking ``x + amount (x - blur(x))``, clipped to [0, 1]."""
    return (x + amount * (x - blur(x, sigma))).clamp(0, 1)


def upsample(lr: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upsampling of the low-resolution input to ``size``, clipped to [0, 1]."""
    return F.interpolate(lr, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def positives(hr: Tensor) -> list[Tensor]:
    """``[HR, sharpened HR]``."""
    return [hr, sharpen(hr)]


def negatives(hr: Tensor, lr: Tensor) -> list[Tensor]:
    """``[bicubic-upsampled LR, blurred HR]``."""
    return [upsample(lr, tuple(hr.shape[-2:])), blur(hr)]


class Discriminator(nn.Module):
    """A small convolutional embedding with ``levels`` feature maps (stride 2 after the first),
    LeakyReLU(0.2) as a GAN discriminator. ``forward`` returns the list of feature maps."""

    def __init__(self, channels: int = 3, width: int = 32, levels: int = 3) -> None:
        super().__init__()
        blocks, cin = [], channels
        for k in range(levels):
            cout = width * 2**k
            blocks.append(nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=1 if k == 0 else 2, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)))
            cin = cout
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for b in self.blocks:
            x = b(x)
            out.append(x)
        return out


def _flat(f: Tensor) -> Tensor:
    """Per-position channel-normalised features flattened and scaled by ``1/sqrt(HW)``, so that
    ``<flat(a), flat(b)> = s(a, b)`` (module docstring)."""
    n, _, h, w = f.shape
    return F.normalize(f, dim=1).reshape(n, -1) / (h * w) ** 0.5


def _nce(anchor: Tensor, pos: Tensor, negs: list[Tensor], tau: float) -> Tensor:
    """One InfoNCE level: anchor ``i`` against its own positive and its own negatives."""
    n = anchor.shape[0]
    samples = torch.cat([pos, *negs])  # (n (1 + K), D), block b holds sample type b
    eye = torch.eye(n, dtype=torch.bool, device=anchor.device)
    own = eye.repeat(1, 1 + len(negs))
    pos_mask = torch.zeros_like(own)
    pos_mask[:, :n] = eye
    return info_nce(_flat(anchor), _flat(samples), pos_mask, own & ~pos_mask,
                    temperature=tau)


def contrast_loss(feats_sr: list[Tensor], feats_pos: list[list[Tensor]],
                  feats_neg: list[list[Tensor]], temperature: float = 1.0) -> Tensor:
    """The generator's contrastive term (module docstring).

    Parameters
    ----------
    feats_sr : list of Tensor
        Discriminator features of ``SR``, one ``(N, C_l, H_l, W_l)`` per level.
    feats_pos, feats_neg : list of list of Tensor
        For each positive (negative) image, its features per level (constants).
    temperature : float
        ``tau`` (1: the authors' code uses the raw mean cosine as logit).
    """
    total = feats_sr[0].new_zeros(())
    for level, a in enumerate(feats_sr):
        negs = [f[level] for f in feats_neg]
        total = total + sum(_nce(a, p[level], negs, temperature) for p in feats_pos) / len(
            feats_pos)
    return total / len(feats_sr)


def discriminator_loss(disc: Discriminator, hr: Tensor, lr: Tensor, sr: Tensor,
                       temperature: float = 1.0) -> Tensor:
    """The discriminator's contrastive training: ``HR`` is the anchor, sharpened ``HR`` its
    positive, and the upsampled LR, blurred ``HR`` and the detached ``SR`` its negatives, so
    that its features separate sharp, faithful images from degraded ones."""
    pos = sharpen(hr)
    negs = [*negatives(hr, lr), sr.detach()]
    fa = disc(hr)
    fp = disc(pos)
    fn = [disc(x) for x in negs]
    total = fa[0].new_zeros(())
    for level, a in enumerate(fa):
        total = total + _nce(a, fp[level], [f[level] for f in fn], temperature)
    return total / len(fa)

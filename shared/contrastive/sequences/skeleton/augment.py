"""Batched skeleton augmentations and HiCLR's growing augmentation branches.

HiCLR (Zhang, Lin, Liu, AAAI 2023, sec. 3.2 "Gradual growing augmentation policy"): the
*basic* augmentation (temporal crop with mirrored padding + shear) as in SkeletonCLR; the
*normal* augmentation adds spatial flip, rotation, Gaussian noise, Gaussian blur and axis
masking to it; the *strong* branch adds joint masking on top (the masked joints take a learnable
token, :class:`~.hiclr.HiCLR`). Strengths are those of the authors' ``feeder/tools.py`` and
config: crop padding ratio 6, shear 0.5, flip p 0.5, rotation U(0, 30 deg) about one random
main axis and U(0, 1 deg) about the others, noise std 0.01 with p 0.5, blur kernel 15 with
sigma U(0.1, 2) and p 0.5, axis mask p 0.5, joint mask ratio 0.1.

Every function takes ``x (N, C, T, V, M)`` and draws its randomness per sequence from the
optional ``generator`` (else torch's global generator, which the engine seeds per epoch).
Departures from the authors' per-sample NumPy code: (1) the Gaussian blur kernel is normalised
to sum 1 and padded by replication (the authors' kernel is unnormalised, scaling the signal by
about ``sqrt(2 pi) sigma``, and zero-padded); (2) the joint mask is drawn per sequence and frame
(the authors' draw one ``(T, V)`` mask for the whole batch); (3) 2-D data (``C = 2``) rotate in
the image plane only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

__all__ = ["AugmentStrengths", "GrowingAugment", "axis_mask", "gaussian_blur", "gaussian_noise",
           "joint_mask", "random_rotate", "shear", "spatial_flip", "temporal_crop"]


def _uniform(shape: Sequence[int], low: float, high: float, like: Tensor,
             generator: torch.Generator | None) -> Tensor:
    u = torch.rand(tuple(shape), generator=generator, device=generator.device
                   if generator is not None else like.device)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def _bernoulli(n: int, p: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    return _uniform((n,), 0.0, 1.0, like, generator) < p


def temporal_crop(x: Tensor, padding_ratio: int = 6,
                  generator: torch.Generator | None = None) -> Tensor:
    """Pad ``T // padding_ratio`` mirrored frames at both ends and crop ``T`` frames at a
    random offset in ``[0, 2 pad]`` (SkeletonCLR's temporal crop)."""
    n, c, t, v, m = x.shape
    pad = t // padding_ratio if padding_ratio > 0 else 0
    if pad == 0:
        return x
    padded = torch.cat([x[:, :, :pad].flip(2), x, x[:, :, -pad:].flip(2)], dim=2)
    start = (_uniform((n,), 0, 2 * pad + 1, x, generator).floor().long().clamp_max(2 * pad))
    idx = start[:, None] + torch.arange(t, device=x.device)[None, :]
    idx = idx.view(n, 1, t, 1, 1).expand(n, c, t, v, m)
    return torch.gather(padded, 2, idx)


def _apply_matrix(x: Tensor, mats: Tensor) -> Tensor:
    """``x' = R x`` per sequence on the coordinate axis: ``mats (N, C, C)``."""
    return torch.einsum("nij,njtvm->nitvm", mats, x)


def shear(x: Tensor, amplitude: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Coordinates times ``I + S`` with off-diagonal ``S_ij ~ U(-a, a)`` per sequence."""
    n, c = x.shape[:2]
    s = _uniform((n, c, c), -amplitude, amplitude, x, generator)
    eye = torch.eye(c, device=x.device, dtype=x.dtype)
    return _apply_matrix(x, eye + s * (1 - eye))


def spatial_flip(x: Tensor, perm: Sequence[int] | None, p: float = 0.5,
                 generator: torch.Generator | None = None) -> Tensor:
    """Swap left and right joints (``perm``) with probability ``p`` per sequence; the
    identity when the layout has no flip permutation."""
    if perm is None:
        return x
    flip = _bernoulli(x.shape[0], p, x, generator)
    flipped = x[:, :, :, torch.as_tensor(list(perm), device=x.device)]
    return torch.where(flip.view(-1, 1, 1, 1, 1), flipped, x)


def _axis_rotation(axis: int, angle: Tensor) -> Tensor:
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {0: [[one, zero, zero], [zero, cos, -sin], [zero, sin, cos]],
            1: [[cos, zero, sin], [zero, one, zero], [-sin, zero, cos]],
            2: [[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]]}[axis]
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def random_rotate(x: Tensor, main_degrees: float = 30.0, other_degrees: float = 1.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """Rotate each 3-D sequence by ``U(0, main)`` about a random main axis and ``U(0, other)``
    about the two others (x, then y, then z); 2-D sequences by ``U(0, main)`` in-plane."""
    n, c = x.shape[:2]
    if c == 2:
        a = _uniform((n,), 0, math.radians(main_degrees), x, generator)
        return _apply_matrix(x, _axis_rotation(2, a)[:, :2, :2])
    if c != 3:
        return x
    main = (_uniform((n,), 0, 3, x, generator).floor().long().clamp_max(2))
    big = _uniform((n, 3), 0, math.radians(main_degrees), x, generator)
    small = _uniform((n, 3), 0, math.radians(other_degrees), x, generator)
    angles = torch.where(torch.nn.functional.one_hot(main, 3).bool(), big, small)
    r = torch.eye(3, device=x.device, dtype=x.dtype).expand(n, 3, 3)
    for axis in range(3):
        r = _axis_rotation(axis, angles[:, axis]) @ r
    return _apply_matrix(x, r)


def gaussian_noise(x: Tensor, std: float = 0.01, p: float = 0.5,
                   generator: torch.Generator | None = None) -> Tensor:
    """Add ``N(0, std^2)`` noise to the whole sequence with probability ``p``."""
    on = _bernoulli(x.shape[0], p, x, generator).view(-1, 1, 1, 1, 1)
    noise = torch.randn(x.shape, generator=generator, device=generator.device
                        if generator is not None else x.device).to(x)
    return x + on * std * noise


def gaussian_blur(x: Tensor, kernel: int = 15, sigma: tuple[float, float] = (0.1, 2.0),
                  p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Temporal Gaussian smoothing (normalised kernel, ``sigma ~ U(sigma)``) with
    probability ``p`` per sequence."""
    n, c, t, v, m = x.shape
    on = _bernoulli(n, p, x, generator)
    s = _uniform((n,), sigma[0], sigma[1], x, generator)
    r = kernel // 2
    offs = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    w = torch.exp(-offs[None] ** 2 / (2 * s[:, None] ** 2))
    w = w / w.sum(1, keepdim=True)  # (N, kernel)
    seq = x.permute(0, 1, 3, 4, 2).reshape(1, n * c * v * m, t)
    seq = torch.nn.functional.pad(seq, (r, r), mode="replicate")
    weight = w.repeat_interleave(c * v * m, 0)[:, None, :]
    out = torch.nn.functional.conv1d(seq, weight, groups=n * c * v * m)
    out = out.view(n, c, v, m, t).permute(0, 1, 4, 2, 3)
    return torch.where(on.view(-1, 1, 1, 1, 1), out, x)


def axis_mask(x: Tensor, p: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Zero one random coordinate axis of the sequence with probability ``p``."""
    n, c = x.shape[:2]
    on = _bernoulli(n, p, x, generator)
    axis = (_uniform((n,), 0, c, x, generator).floor().long().clamp_max(c - 1))
    drop = torch.nn.functional.one_hot(axis, c).bool() & on[:, None]
    return x.masked_fill(drop.view(n, c, 1, 1, 1), 0.0)


def joint_mask(x: Tensor, ratio: float = 0.1, token: Tensor | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Replace ``int(V * ratio)`` random joints of every frame (all persons and coordinates)
    by ``token`` (0 when ``None``). Returns the masked sequence and the keep mask
    ``(N, 1, T, V, 1)`` (``False`` where masked)."""
    n, c, t, v, m = x.shape
    k = int(v * ratio)
    scores = _uniform((n, t, v), 0, 1, x, generator)
    keep = torch.ones(n, t, v, dtype=torch.bool, device=x.device)
    if k > 0:
        idx = scores.topk(k, dim=-1).indices
        keep.scatter_(-1, idx, False)
    keep = keep.view(n, 1, t, v, 1)
    fill = torch.zeros((), device=x.device, dtype=x.dtype) if token is None else token.to(x)
    return torch.where(keep, x, fill), keep


@dataclass
class AugmentStrengths:
    """HiCLR's augmentation strengths (authors' ``feeder/tools.py`` and config)."""

    padding_ratio: int = 6
    shear: float = 0.5
    flip_p: float = 0.5
    rotate_main_degrees: float = 30.0
    rotate_other_degrees: float = 1.0
    noise_std: float = 0.01
    noise_p: float = 0.5
    blur_kernel: int = 15
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    blur_p: float = 0.5
    axis_mask_p: float = 0.5
    joint_mask_ratio: float = 0.1


Op = Callable[[Tensor, torch.Generator | None], Tensor]


@dataclass
class GrowingAugment:
    """The growing augmentation policy: level 0 ``basic``, level 1 ``normal`` (basic +
    five more), level 2 ``strong`` (normal + joint mask, applied by the model with its
    learnable token).

    Parameters
    ----------
    flip : sequence of int or None
        The layout's left/right permutation (``None``: spatial flip is skipped).
    strengths : AugmentStrengths

    Examples
    --------
    >>> aug = GrowingAugment(flip=None)
    >>> aug.level_names()
    [['temporal_crop', 'shear'], ['temporal_crop', 'shear', 'spatial_flip', 'rotate', \
'gaussian_noise', 'gaussian_blur', 'axis_mask'], ['temporal_crop', 'shear', 'spatial_flip', \
'rotate', 'gaussian_noise', 'gaussian_blur', 'axis_mask', 'joint_mask']]
    """

    flip: Sequence[int] | None = None
    strengths: AugmentStrengths = field(default_factory=AugmentStrengths)

    def ops(self) -> tuple[list[tuple[str, Op]], list[tuple[str, Op]]]:
        """The ``basic`` operations and the ``normal`` level's additions, in order."""
        s = self.strengths
        basic: list[tuple[str, Op]] = [
            ("temporal_crop", lambda x, g: temporal_crop(x, s.padding_ratio, g)),
            ("shear", lambda x, g: shear(x, s.shear, g))]
        extra: list[tuple[str, Op]] = [
            ("spatial_flip", lambda x, g: spatial_flip(x, self.flip, s.flip_p, g)),
            ("rotate", lambda x, g: random_rotate(x, s.rotate_main_degrees,
                                                  s.rotate_other_degrees, g)),
            ("gaussian_noise", lambda x, g: gaussian_noise(x, s.noise_std, s.noise_p, g)),
            ("gaussian_blur", lambda x, g: gaussian_blur(x, s.blur_kernel, s.blur_sigma,
                                                         s.blur_p, g)),
            ("axis_mask", lambda x, g: axis_mask(x, s.axis_mask_p, g))]
        return basic, extra

    def level_names(self) -> list[list[str]]:
        """Operation names of each level, in the order they are applied."""
        basic, extra = self.ops()
        b = [name for name, _ in basic]
        e = b + [name for name, _ in extra]
        return [b, e, e + ["joint_mask"]]

    def apply(self, x: Tensor, level: int, generator: torch.Generator | None = None) -> Tensor:
        """Level 0 (basic) or 1 (normal); level 2 is level 1 followed by :func:`joint_mask`
        done by the caller (it owns the token)."""
        basic, extra = self.ops()
        chain = basic if level == 0 else basic + extra
        for _, op in chain:
            x = op(x, generator)
        return x

"""Psychophysical stimuli of the low-level vision probe, in absolute luminance.

Cai, Yin, Hammou and Mantiuk, "Do computer vision foundation models learn the low-level
characteristics of the human visual system?", CVPR 2025 (arXiv:2502.20256), section 3: every
stimulus is a 224 x 224 image seen at 60 pixels per degree (3.73 deg), defined in cd/m^2 and
shown to a model through a display model (:func:`encode_display`).

* Gabor patch (their eq. for the detection tests):
  ``L(x, y) = L_b * (1 + c * sin(2 pi rho x) * exp(-(x^2 + y^2) / (2 R^2)))`` with ``x, y`` in
  degrees from the centre, ``rho`` in cycles per degree and the envelope radius ``R`` in degrees.
* Band-limited noise: white Gaussian noise filtered to the octave band
  ``[rho / sqrt(2), rho * sqrt(2)]`` cpd, normalised to unit standard deviation,
  ``L = L_b (1 + c n)`` (``c`` is the RMS contrast).
* Sinusoidal grating: the Gabor without envelope (contrast matching, phase-coherent mask).

Colour: the authors modulate the DKL red-green and yellow-violet axes (CIE 2006 LMS, D65) and
convert to Rec. 709. We modulate isoluminant directions of linear Rec. 709 instead
(:data:`COLOUR_DIRECTIONS`: the luminance ``0.2126 R + 0.7152 G + 0.0722 B`` stays ``L_b``), which
needs no cone fundamentals; the contrast ``c`` is then the peak modulation of the strongest
channel relative to the background. This departs from the paper's colour space, not its design.

Everything here is numpy (float64); images are ``(H, W)`` luminance or ``(H, W, 3)`` linear RGB
in cd/m^2, and :func:`encode_display` turns either into the ``(H, W, 3)`` display values in
``[0, 1]`` that the encoders see.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "COLOUR_DIRECTIONS",
    "PEAK_LUMINANCE",
    "PPD",
    "SIZE",
    "band_limited_noise",
    "coordinates",
    "encode_display",
    "gabor",
    "grating",
    "lowpass_noise",
    "srgb_oetf",
    "to_rgb",
]

SIZE = 224
"""Image side in pixels (the paper's 224 x 224)."""
PPD = 60.0
"""Pixels per visual degree (the paper's 60 ppd: the image spans 3.73 deg)."""
PEAK_LUMINANCE = 400.0
"""Display peak luminance in cd/m^2: the paper encodes ``L / 400`` with the sRGB OETF."""
LUMINANCE_FLOOR = 1e-4
"""Luminance floor in cd/m^2 before encoding (the paper's ``1e-4``)."""

_Y709 = np.array([0.2126, 0.7152, 0.0722])
COLOUR_DIRECTIONS: dict[str, np.ndarray] = {
    "ach": np.array([1.0, 1.0, 1.0]),
    # red-green: R against G, luminance-neutral, max |component| = 1
    "rg": np.array([1.0, -_Y709[0] / _Y709[1], 0.0]),
    # yellow-violet: R+G against B, luminance-neutral, max |component| = 1
    "yv": np.array([_Y709[2] / (_Y709[0] + _Y709[1]), _Y709[2] / (_Y709[0] + _Y709[1]), -1.0]),
}
"""Modulation directions in linear Rec. 709 (achromatic, red-green, yellow-violet)."""


def coordinates(size: int = SIZE, ppd: float = PPD) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in degrees, ``(x, y)`` each ``(size, size)``, origin at the
    centre of the image (x to the right, y down)."""
    axis = (np.arange(size) - (size - 1) / 2.0) / ppd
    y, x = np.meshgrid(axis, axis, indexing="ij")
    return x, y


def _check(contrast: float, luminance: float) -> None:
    if not np.isfinite(contrast) or contrast < 0:
        raise ValueError(f"contrast must be finite and >= 0, got {contrast}")
    if not np.isfinite(luminance) or luminance <= 0:
        raise ValueError(f"background luminance must be > 0 cd/m^2, got {luminance}")


def gabor(rho: float, contrast: float, *, radius: float = 1.0, luminance: float = 100.0,
          size: int = SIZE, ppd: float = PPD, phase: float = 0.0) -> np.ndarray:
    """Vertical Gabor patch in cd/m^2, ``(size, size)`` (paper section 3.1).

    Parameters
    ----------
    rho : float
        Spatial frequency in cycles per degree.
    contrast : float
        Peak (Michelson) contrast ``c`` of the carrier.
    radius : float
        Standard deviation ``R`` of the Gaussian envelope in degrees.
    luminance : float
        Background luminance ``L_b`` in cd/m^2.
    phase : float
        Carrier phase in radians (0: sine phase, zero mean).
    """
    _check(contrast, luminance)
    x, y = coordinates(size, ppd)
    envelope = np.exp(-(x ** 2 + y ** 2) / (2.0 * radius ** 2))
    return luminance * (1.0 + contrast * np.sin(2 * np.pi * rho * x + phase) * envelope)


def grating(rho: float, contrast: float, *, luminance: float = 100.0, size: int = SIZE,
            ppd: float = PPD, phase: float = 0.0) -> np.ndarray:
    """Full-field vertical sinusoidal grating in cd/m^2, ``(size, size)``:
    ``L_b (1 + c sin(2 pi rho x + phase))``."""
    _check(contrast, luminance)
    x, _ = coordinates(size, ppd)
    return luminance * (1.0 + contrast * np.sin(2 * np.pi * rho * x + phase))


def _radial_frequency(size: int, ppd: float) -> np.ndarray:
    f = np.fft.fftfreq(size, d=1.0 / ppd)  # cycles per degree
    fy, fx = np.meshgrid(f, f, indexing="ij")
    return np.hypot(fx, fy)


def _filtered_noise(keep: np.ndarray, seed: int, size: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal((size, size))
    n = np.real(np.fft.ifft2(np.fft.fft2(white) * keep))
    n -= n.mean()
    std = n.std()
    if std == 0:
        raise ValueError("the frequency band holds no component at this size and ppd")
    return n / std


def band_limited_noise(rho: float, contrast: float, *, luminance: float = 100.0,
                       size: int = SIZE, ppd: float = PPD, seed: int = 8) -> np.ndarray:
    """Octave band-limited Gaussian noise in cd/m^2 (paper section 3.1, test 2).

    The spectrum of white noise (``seed``; the authors use 8) is kept in the radial band
    ``[rho / sqrt(2), rho * sqrt(2)]`` cpd, the result normalised to zero mean and unit standard
    deviation ``n``, and ``L = L_b (1 + c n)``: ``contrast`` is the RMS contrast.
    """
    _check(contrast, luminance)
    r = _radial_frequency(size, ppd)
    keep = (r >= rho / np.sqrt(2.0)) & (r <= rho * np.sqrt(2.0))
    return luminance * (1.0 + contrast * _filtered_noise(keep, seed, size))


def lowpass_noise(cutoff: float, contrast: float, *, luminance: float = 37.0,
                  size: int = SIZE, ppd: float = PPD, seed: int = 8) -> np.ndarray:
    """Gaussian noise low-passed at ``cutoff`` cpd (ideal radial filter), unit-std
    normalised, ``L_b (1 + c n)``: the phase-incoherent mask of test 8."""
    _check(contrast, luminance)
    keep = (_radial_frequency(size, ppd) <= cutoff)
    keep[0, 0] = False
    return luminance * (1.0 + contrast * _filtered_noise(keep, seed, size))


def to_rgb(luminance_image: np.ndarray, direction: str = "ach") -> np.ndarray:
    """Linear Rec. 709 image ``(H, W, 3)`` in cd/m^2 from a modulated luminance image.

    The modulation ``L - L_b`` (with ``L_b`` the image mean, exact for the zero-mean stimuli
    here) is applied along :data:`COLOUR_DIRECTIONS` ``[direction]``; ``"ach"`` gives grey.
    """
    if direction not in COLOUR_DIRECTIONS:
        raise ValueError(f"unknown colour direction {direction!r}; "
                         f"use one of {', '.join(COLOUR_DIRECTIONS)}")
    base = float(luminance_image.mean())
    delta = luminance_image - base
    return base + delta[..., None] * COLOUR_DIRECTIONS[direction]


def srgb_oetf(v: np.ndarray) -> np.ndarray:
    """sRGB opto-electronic transfer function (IEC 61966-2-1) of linear values in [0, 1]."""
    v = np.clip(v, 0.0, 1.0)
    return np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1.0 / 2.4) - 0.055)


def encode_display(image: np.ndarray, peak: float = PEAK_LUMINANCE) -> np.ndarray:
    """Display-encoded RGB in [0, 1], ``(H, W, 3)`` float32, of an image in cd/m^2.

    As the paper: luminance floored at ``1e-4`` cd/m^2, divided by the display peak (400 cd/m^2),
    clipped to [0, 1] and passed through the sRGB OETF; no per-model mean/std normalisation here
    (each encoder adapter applies its own).
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected (H, W) or (H, W, 3), got {image.shape}")
    linear = np.maximum(image, LUMINANCE_FLOOR) / peak
    return srgb_oetf(linear).astype(np.float32)

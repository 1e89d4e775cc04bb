"""Stimuli of the low-level vision probe: contrast and spatial frequency checked via the FFT."""

import numpy as np
import pytest

from medcl.contrastive.hvs import stimuli

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE, PPD = stimuli.SIZE, stimuli.PPD


def _peak_frequency(image):
    """Radial frequency (cpd) of the largest non-DC Fourier amplitude."""
    spec = np.abs(np.fft.fft2(image - image.mean()))
    f = np.fft.fftfreq(image.shape[0], d=1.0 / PPD)
    iy, ix = np.unravel_index(np.argmax(spec), spec.shape)
    return float(np.hypot(f[iy], f[ix]))


@pytest.mark.parametrize("cycles", [2, 8, 30])
def test_grating_frequency_and_contrast_by_fft(cycles):
    rho = cycles * PPD / SIZE  # a whole number of cycles across the image
    lb, c = 50.0, 0.3
    img = stimuli.grating(rho, c, luminance=lb)
    spec = np.fft.fft2(img) / img.size
    # the energy sits in the bins +-cycles of the x axis only; amplitude c*L_b/2 each
    amp = np.abs(spec)
    assert amp[0, cycles] == pytest.approx(c * lb / 2, rel=1e-9)
    assert amp[0, -cycles] == pytest.approx(c * lb / 2, rel=1e-9)
    amp[0, [0, cycles, -cycles]] = 0
    assert amp.max() < 1e-9 * lb
    assert _peak_frequency(img) == pytest.approx(rho)
    # sampled peaks fall between pixels: Michelson contrast within 1 %
    assert (img.max() - img.min()) / (img.max() + img.min()) == pytest.approx(c, rel=1e-2)


@pytest.mark.parametrize("rho", [1.0, 4.0, 12.0])
def test_gabor_peak_contrast_frequency_and_mean(rho):
    lb, c = 100.0, 0.2
    img = stimuli.gabor(rho, c, radius=1.0, luminance=lb)
    assert img.mean() == pytest.approx(lb, rel=1e-9)  # sine phase: zero-mean modulation
    # peak contrast: a per-pixel loop over the central row (pixel centres at +-0.5 px)
    best = 0.0
    for j in range(SIZE):
        xd, yd = (j - (SIZE - 1) / 2) / PPD, 0.5 / PPD
        best = max(best, abs(np.sin(2 * np.pi * rho * xd)) * np.exp(-(xd ** 2 + yd ** 2) / 2))
    assert np.abs(img - lb).max() / lb == pytest.approx(c * best, rel=1e-9)
    assert best > 0.9
    assert _peak_frequency(img) == pytest.approx(rho, abs=PPD / SIZE)


def test_gabor_envelope_radius():
    # a pure envelope check: the modulation amplitude falls to exp(-1/2) at R degrees
    img = stimuli.gabor(15.0, 0.5, radius=0.5, luminance=10.0, phase=np.pi / 2)  # cosine phase
    x, y = stimuli.coordinates()
    centre = np.abs(img - 10.0)[y.shape[0] // 2, :]
    xs = x[0]
    near = np.argmin(np.abs(np.abs(xs) - 0.5) + (np.cos(2 * np.pi * 15 * xs) < 0.99) * 9)
    expect = 0.5 * 10.0 * np.exp(-xs[near] ** 2 / (2 * 0.25)) * np.cos(2 * np.pi * 15 * xs[near])
    ycorr = np.exp(-y[y.shape[0] // 2, 0] ** 2 / (2 * 0.25))
    assert centre[near] == pytest.approx(abs(expect) * ycorr, rel=1e-9)


@pytest.mark.parametrize("rho", [1.0, 4.0, 16.0])
def test_band_limited_noise_band_and_rms_contrast(rho):
    lb, c = 100.0, 0.1
    img = stimuli.band_limited_noise(rho, c, luminance=lb)
    assert img.mean() == pytest.approx(lb, rel=1e-9)
    assert img.std() / lb == pytest.approx(c, rel=1e-9)  # RMS contrast
    power = np.abs(np.fft.fft2(img - lb)) ** 2
    f = np.fft.fftfreq(SIZE, d=1.0 / PPD)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    r = np.hypot(fx, fy)
    inside = (r >= rho / np.sqrt(2)) & (r <= rho * np.sqrt(2))
    assert power[~inside].sum() < 1e-12 * power.sum()
    # reproducible with the authors' seed
    assert np.array_equal(img, stimuli.band_limited_noise(rho, c, luminance=lb))


def test_lowpass_noise_cutoff():
    img = stimuli.lowpass_noise(12.0, 0.2, luminance=37.0)
    power = np.abs(np.fft.fft2(img - img.mean())) ** 2
    f = np.fft.fftfreq(SIZE, d=1.0 / PPD)
    fy, fx = np.meshgrid(f, f, indexing="ij")
    assert power[np.hypot(fx, fy) > 12.0].sum() < 1e-12 * power.sum()
    assert img.std() / 37.0 == pytest.approx(0.2, rel=1e-9)


@pytest.mark.parametrize("direction", ["rg", "yv"])
def test_colour_directions_are_isoluminant(direction):
    lum = stimuli.gabor(2.0, 0.1, luminance=40.0)
    rgb = stimuli.to_rgb(lum, direction)
    y = rgb @ np.array([0.2126, 0.7152, 0.0722])
    assert np.allclose(y, 40.0, rtol=1e-12)
    # the strongest channel carries the contrast
    assert np.abs(rgb - 40.0).max() / 40.0 == pytest.approx(np.abs(lum - 40).max() / 40)
    assert np.allclose(stimuli.to_rgb(lum, "ach"), lum[..., None])


def test_display_encoding_srgb():
    # IEC 61966-2-1 values: linear 0.5 -> 0.7354, 0.002 -> 12.92 * 0.002
    assert stimuli.srgb_oetf(np.array(0.5)) == pytest.approx(1.055 * 0.5 ** (1 / 2.4) - 0.055)
    assert float(stimuli.srgb_oetf(np.array(0.5))) == pytest.approx(0.7354, abs=1e-4)
    assert float(stimuli.srgb_oetf(np.array(0.002))) == pytest.approx(0.02584)
    enc = stimuli.encode_display(np.array([[0.0, 400.0], [800.0, 200.0]]))
    assert enc.shape == (2, 2, 3) and enc.dtype == np.float32
    assert enc[0, 1, 0] == pytest.approx(1.0) and enc[1, 0, 2] == pytest.approx(1.0)
    assert enc[0, 0, 0] == pytest.approx(12.92 * 1e-4 / 400, rel=1e-5)  # the 1e-4 floor


def test_bad_values_are_refused():
    with pytest.raises(ValueError):
        stimuli.gabor(2.0, -0.1)
    with pytest.raises(ValueError):
        stimuli.grating(2.0, 0.1, luminance=0.0)
    with pytest.raises(ValueError):
        stimuli.to_rgb(np.ones((4, 4)), "blue")

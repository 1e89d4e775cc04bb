"""Human reference models: hand transcriptions of the cited formulas and known properties."""

import math

import numpy as np
import pytest

from medcl.contrastive.hvs import human

pytestmark = pytest.mark.usefixtures("one_thread")


def _barten_by_hand(u, L, X0):
    # Barten, Proc. SPIE 5294 (2004), eq. 1, term by term
    a = 5200 * math.exp(-0.0016 * u * u * (1 + 100 / L) ** 0.08)
    b = 1 + 144 / X0 ** 2 + 0.64 * u * u
    c = 63 / L ** 0.83 + 1 / (1 - math.exp(-0.02 * u * u))
    return a / math.sqrt(b * c)


@pytest.mark.parametrize("u,L,X0", [(0.5, 100, 1.77), (4, 100, 40), (16, 1, 3.73),
                                    (2, 0.1, 1.77), (32, 200, 0.3)])
def test_barten_matches_hand_transcription(u, L, X0):
    assert human.barten_csf(u, L, X0) == pytest.approx(_barten_by_hand(u, L, X0), rel=1e-12)


def test_barten_shape():
    u = np.logspace(-1, 1.6, 200)
    s = human.barten_csf(u, 100, 40)
    peak = u[np.argmax(s)]
    assert 2.0 < peak < 6.0  # band-pass, peak at a few cpd at photopic luminance
    assert s.max() > 300  # peak sensitivity of a few hundred
    lum = human.barten_csf(2, np.logspace(-1, 2.3, 20), 2)
    assert np.all(np.diff(lum) > 0)  # sensitivity rises with luminance
    area = human.barten_csf(8, 100, np.linspace(0.2, 2, 20))
    assert np.all(np.diff(area) > 0)  # and with size


def _castle_by_hand(rho, L, A, p):
    s_max = p["S_max"][0] * (1 + p["S_max"][1] / L) ** (-p["S_max"][2])
    if rho < p["f_max"]:
        lp = 1.0
    else:
        lp = 10 ** (-(math.log10(rho) - math.log10(p["f_max"])) ** 2 / 2 ** p["bw"])
    ac = p["A_0"] / (1 + (rho / p["f_0"]) ** 2)
    return s_max * lp * math.sqrt(ac / (1 + ac / A)) * rho


@pytest.mark.parametrize("direction", ["rg", "yv"])
def test_castle_chromatic_matches_hand_and_is_low_pass(direction):
    p = human.CASTLE_CHROM[direction]
    for rho, L, A in [(0.5, 100, math.pi), (4, 10, 0.5), (16, 100, 3)]:
        got = human.castle_chromatic_csf(rho, L, A, direction)
        assert got == pytest.approx(_castle_by_hand(rho, L, A, p), rel=1e-12)
    s = human.castle_chromatic_csf(np.logspace(0.3, 1.5, 10), 100, math.pi, direction)
    assert np.all(np.diff(s) < 0)  # chromatic CSFs fall above ~2 cpd
    with pytest.raises(ValueError):
        human.castle_chromatic_csf(1.0, 100, 1.0, "ach")


def test_masking_and_matching_rules():
    c0 = 0.01
    assert human.legge_foley_threshold(0.001, c0) == pytest.approx(c0)
    assert human.legge_foley_threshold(0.1, c0) == pytest.approx(c0 * 10 ** 0.6)
    assert human.noise_masking_threshold(0.0, c0) == pytest.approx(c0)
    assert human.noise_masking_threshold(0.2, c0) == pytest.approx(math.hypot(c0, 0.1))
    # Kulikowski: equal suprathreshold excess; at high contrast the match equals the reference
    assert human.kulikowski_match(0.5, 0.01, 0.05) == pytest.approx(0.54)
    assert human.kulikowski_match(0.005, 0.01, 0.05) == pytest.approx(0.05)

"""Human reference models of the low-level vision probe (closed-form, offline).

The paper (Cai et al., CVPR 2025) samples castleCSF (Ashraf, Mantiuk, Chapiro and Wuerger,
"castleCSF - a contrast sensitivity function of color, area, spatio-temporal frequency,
luminance and eccentricity", J. Vision 24(4):5, 2024) into JSON files and reads the masking and
matching data of Foley (1994) and of a contrast-matching study as published points. Those files
are not shipped here, so the references are closed-form models with cited formulas:

* Achromatic detection (tests 1, 2, 5, 6): Barten's simplified CSF, P. G. J. Barten, "Formula for
  the contrast sensitivity of the human eye", Proc. SPIE 5294 (2004), eq. (1) — the model the
  paper cites for the CSF's luminance and size dependence::

      S(u, L, X0) = 5200 exp(-0.0016 u^2 (1 + 100/L)^0.08)
                    / sqrt((1 + 144/X0^2 + 0.64 u^2) (63/L^0.83 + 1/(1 - exp(-0.02 u^2))))

  with ``u`` in cpd, ``L`` in cd/m^2 and ``X0`` the object's angular size in degrees. We take
  ``X0 = sqrt(pi) * R`` for a Gabor of envelope radius ``R`` (the side of a square of the same
  area ``pi R^2``) and the whole image (3.73 deg) for noise, evaluated at the band centre.
* Chromatic detection (tests 3, 4): castleCSF's chromatic sustained channel (static, foveal),
  eq. of the truncated log-parabola with Rovamo et al.'s (1993) area summation, with the
  published red-green / yellow-violet parameters of gfxdisp/castleCSF
  (``CSF_castleCSF_chrom.get_default_par``)::

      S = S_max(L) * S_LP(rho) * sqrt(A_c / (1 + A_c / A)) * rho,
      S_max(L) = p1 (1 + p2 / L)^(-p3),   A_c = A_0 / (1 + (rho / f_0)^2),
      S_LP = 10^(-|log10 rho - log10 f_max|^2 / 2^bw) for rho >= f_max, 1 below.

  castleCSF's chromatic sensitivity is in cone contrast while our colour contrast is an RGB
  modulation (see :mod:`.stimuli`); the two differ by a constant per colour direction, which
  does not change the Spearman score of the paper's protocol but shifts absolute thresholds.
* Masking (tests 7, 8): the threshold-versus-contrast function of G. E. Legge and J. M. Foley,
  "Contrast masking in human vision", JOSA 70(12):1458-1471 (1980) — above the unmasked
  threshold ``C_0`` the test threshold grows as a power of the mask contrast,
  ``C_t = C_0 max(1, C_m / C_0)^eps`` with ``eps = 0.6`` (their masking slopes lie near 0.6-0.7);
  for the noise mask the linear-amplifier model (D. G. Pelli, 1981; G. E. Legge, D. Kersten and
  A. E. Burgess, JOSA A 4(2):391, 1987): ``C_t^2 = C_0^2 + (k C_m)^2``. ``C_0`` comes from the CSF
  above. ``eps`` and ``k`` are stated defaults, not fitted to the authors' data.
* Contrast matching (test 9): J. J. Kulikowski, "Effective contrast constancy and linearity of
  contrast sensation", Vision Res. 16:1419-1431 (1976): gratings match when their contrasts
  exceed threshold by the same amount, ``C_test - T_test = C_ref - T_ref`` (``T = 1/S``), the
  rule behind Georgeson and Sullivan's (1975) contrast constancy.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CASTLE_CHROM",
    "barten_csf",
    "castle_chromatic_csf",
    "kulikowski_match",
    "legge_foley_threshold",
    "noise_masking_threshold",
]


def barten_csf(u, luminance, field_deg):
    """Barten's simplified CSF (Barten, Proc. SPIE 5294, 2004, eq. 1).

    Parameters
    ----------
    u : array_like
        Spatial frequency in cycles per degree (> 0).
    luminance : array_like
        Adapting luminance in cd/m^2 (> 0).
    field_deg : array_like
        Angular object size ``X0`` in degrees (> 0).

    Returns
    -------
    numpy.ndarray
        Contrast sensitivity ``1 / threshold contrast`` (broadcast of the inputs).
    """
    u = np.asarray(u, dtype=np.float64)
    L = np.asarray(luminance, dtype=np.float64)
    X0 = np.asarray(field_deg, dtype=np.float64)
    num = 5200.0 * np.exp(-0.0016 * u ** 2 * (1.0 + 100.0 / L) ** 0.08)
    den = np.sqrt((1.0 + 144.0 / X0 ** 2 + 0.64 * u ** 2)
                  * (63.0 / L ** 0.83 + 1.0 / (1.0 - np.exp(-0.02 * u ** 2))))
    return num / den


CASTLE_CHROM: dict[str, dict[str, object]] = {
    "rg": {"S_max": (603.119, 39.1484, 0.469632), "f_max": 0.0252664, "bw": 2.29106,
           "A_0": 2576.1, "f_0": 0.0728586},
    "yv": {"S_max": (153.288, 67.8963, 0.404577), "f_max": 0.00493065, "bw": 2.65931,
           "A_0": 2.81739e07, "f_0": 0.000630395},
}
"""castleCSF chromatic sustained-channel parameters (gfxdisp/castleCSF, Ashraf et al. 2024)."""


def castle_chromatic_csf(rho, luminance, area, direction: str):
    """castleCSF chromatic sensitivity (static, foveal) of ``direction`` ``"rg"`` or ``"yv"``.

    Parameters
    ----------
    rho : array_like
        Spatial frequency in cpd.
    luminance : array_like
        Background luminance in cd/m^2.
    area : array_like
        Stimulus area in deg^2 (``pi R^2`` for a Gabor of radius ``R``).
    direction : str
        ``"rg"`` or ``"yv"``.
    """
    if direction not in CASTLE_CHROM:
        raise ValueError(f"direction must be 'rg' or 'yv', got {direction!r}")
    p = CASTLE_CHROM[direction]
    rho = np.asarray(rho, dtype=np.float64)
    L = np.asarray(luminance, dtype=np.float64)
    A = np.asarray(area, dtype=np.float64)
    p1, p2, p3 = p["S_max"]
    s_max = p1 * (1.0 + p2 / L) ** (-p3)
    f_max = float(p["f_max"])
    lp = 10.0 ** (-np.abs(np.log10(rho) - np.log10(f_max)) ** 2 / 2.0 ** float(p["bw"]))
    lp = np.where(rho < f_max, 1.0, lp)
    a_c = float(p["A_0"]) / (1.0 + (rho / float(p["f_0"])) ** 2)
    return s_max * lp * np.sqrt(a_c / (1.0 + a_c / A)) * rho


def legge_foley_threshold(mask_contrast, c0: float, eps: float = 0.6):
    """Test threshold under a phase-coherent mask (Legge and Foley, 1980):
    ``C_0 max(1, C_m / C_0)^eps`` (the facilitation dip is not modelled)."""
    cm = np.asarray(mask_contrast, dtype=np.float64)
    return c0 * np.maximum(1.0, cm / c0) ** eps


def noise_masking_threshold(mask_contrast, c0: float, k: float = 0.5):
    """Test threshold under a noise mask of RMS contrast ``C_m`` (linear amplifier model):
    ``sqrt(C_0^2 + (k C_m)^2)``."""
    cm = np.asarray(mask_contrast, dtype=np.float64)
    return np.sqrt(c0 ** 2 + (k * cm) ** 2)


def kulikowski_match(ref_contrast, ref_threshold, test_threshold):
    """Contrast of a test grating that matches a reference grating (Kulikowski, 1976):
    ``C_test = C_ref - T_ref + T_test``, floored at ``T_test`` (a match is at least visible)."""
    c = np.asarray(ref_contrast, dtype=np.float64)
    t_ref = np.asarray(ref_threshold, dtype=np.float64)
    t_test = np.asarray(test_threshold, dtype=np.float64)
    return np.maximum(c - t_ref + t_test, t_test)

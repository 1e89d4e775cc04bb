"""The nine tests of the low-level vision probe, runnable on any image encoder.

Cai, Yin, Hammou and Mantiuk, "Do computer vision foundation models learn the low-level
characteristics of the human visual system?", CVPR 2025 (arXiv:2502.20256), section 3 and
table 1: six contrast-detection tests (achromatic Gabor over frequency, band-limited noise,
red-green and yellow-violet Gabors, luminance, area), two contrast-masking tests (phase-coherent
grating mask, phase-incoherent noise mask) and contrast matching.

Protocol per test (the authors' ``test_zoo.py``, re-derived here):

* **Detection and masking — Spearman.** For each condition ``x`` the human threshold contrast
  ``C_h(x)`` (:mod:`.human`) is rendered scaled by ratios ``r`` in ``logspace(0.5, 2, 10)``
  (the authors render ``1 / (m S_h)`` for detection and ``m C_h`` for masking, ``m`` over the
  same range), the response ``S(T, R)`` (:func:`.response.angular_response`) is computed, and
  all ``(r, S)`` pairs of the test are pooled: ``score = Spearman(r, S)``. A model whose
  visibility follows human thresholds gives ``S`` increasing with ``r`` in every condition,
  whatever its absolute sensitivity. For detection this equals the authors' ``-rho(m, S)``.
* **Detection and masking — RMSE (our addition).** The model's own threshold per condition is
  the contrast where ``S`` reaches the median pooled response (so the criterion sits at the
  human threshold on average), found by :func:`.response.bisect_log`; the RMSE of
  ``log10`` model vs human thresholds measures the shape mismatch the Spearman score cannot.
* **Matching — RMSE (the paper's score).** For a 5 cpd reference grating of contrast ``C_ref``
  the matching test contrast at frequency ``rho`` solves ``S(test vs uniform) = S(ref vs
  uniform)`` (bisection in place of the authors' ``root_scalar``); the score is the RMSE of
  ``log10`` matched contrasts against the human matches (:func:`.human.kulikowski_match`), and
  the Spearman of model vs human matches is reported too.

The grids are smaller than the paper's (20 conditions, 20 contrasts) by default; :class:`Grid`
sets them. Everything is numpy; the encoder is a callable ``embed(images) -> features`` with
images ``(N, H, W, 3)`` float32 display values in [0, 1] (:func:`.stimuli.encode_display`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import human, stimuli
from .response import angular_response, bisect_log, rmse, spearman

__all__ = ["TESTS", "Grid", "HVSTest", "TestResult", "module_embedder", "run_battery",
           "run_test"]

Embed = Callable[[np.ndarray], np.ndarray]
"""``embed(images (N, H, W, 3) float32 in [0, 1]) -> features (N, ...)``."""

FIELD_DEG = stimuli.SIZE / stimuli.PPD


@dataclass(frozen=True)
class Grid:
    """Sampling of the tests.

    Attributes
    ----------
    conditions : int
        Conditions per test (frequencies, luminances, areas, mask contrasts; reference
        contrasts of the matching test). The paper uses 20.
    ratios : int
        Contrast ratios to the human threshold per condition, log-spaced in [0.5, 2] (paper 10).
    steps : int
        Bisection steps of each threshold search (0.3 / 2^steps decades resolution at 10).
    size, ppd : int, float
        Image side in pixels and pixels per degree (the paper: 224, 60).
    batch : int
        Images per encoder call.
    """

    conditions: int = 8
    ratios: int = 10
    steps: int = 10
    size: int = stimuli.SIZE
    ppd: float = stimuli.PPD
    batch: int = 32

    def ratio_values(self) -> np.ndarray:
        return np.logspace(np.log10(0.5), np.log10(2.0), self.ratios)


Stim = Callable[[float, float, Grid], np.ndarray]  # (condition, contrast, grid) -> cd/m^2 image
Ref = Callable[[float, Grid], np.ndarray]  # condition -> reference image in cd/m^2


@dataclass(frozen=True)
class HVSTest:
    """One test: its conditions, stimulus, reference image and human threshold model."""

    key: str
    title: str
    kind: str  # "detection" | "masking" | "matching"
    x_name: str
    x_range: tuple[float, float]
    test_image: Stim
    ref_image: Ref
    human_threshold: Callable[[np.ndarray], np.ndarray]
    reference: str
    contrast_range: tuple[float, float] = (1e-3, 1.0)

    def conditions(self, grid: Grid) -> np.ndarray:
        lo, hi = self.x_range
        return np.logspace(np.log10(lo), np.log10(hi), grid.conditions)


@dataclass
class TestResult:
    """What a test measured.

    ``x``: conditions; ``human`` and ``model``: threshold contrasts per condition (detection,
    masking) or matched contrasts flattened over (reference contrast x test frequency) with the
    reference contrast in ``extra["ref_contrast"]`` (matching); ``ratio`` and ``response``: the
    pooled pairs of the Spearman protocol (detection, masking).
    """

    key: str
    title: str
    kind: str
    x_name: str
    x: np.ndarray
    human: np.ndarray
    model: np.ndarray
    spearman: float
    rmse: float
    seconds: float
    reference: str
    ratio: np.ndarray = field(default_factory=lambda: np.zeros(0))
    response: np.ndarray = field(default_factory=lambda: np.zeros(0))
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        return {"test": self.key, "title": self.title, "kind": self.kind,
                "spearman": self.spearman, "rmse_log10": self.rmse,
                "conditions": int(len(np.unique(self.x))), "seconds": self.seconds,
                "human_reference": self.reference}

    def curve_rows(self) -> list[dict[str, object]]:
        rows = []
        ref = self.extra.get("ref_contrast")
        for i in range(len(self.x)):
            row = {"test": self.key, "x_name": self.x_name, "x": float(self.x[i]),
                   "human": float(self.human[i]), "model": float(self.model[i])}
            if ref is not None:
                row["ref_contrast"] = float(ref[i])
            rows.append(row)
        return rows


# --- stimuli of the nine tests --------------------------------------------------------------

def _uniform(lum: float) -> Ref:
    return lambda x, g: np.full((g.size, g.size), lum)


def _gabor(rho=None, radius=None, lum=None, colour="ach", vary="rho") -> Stim:
    def make(x: float, c: float, g: Grid) -> np.ndarray:
        kw = {"rho": rho, "radius": radius, "luminance": lum}
        if vary == "area":
            kw["radius"] = math.sqrt(x / math.pi)
        else:
            kw[{"rho": "rho", "luminance": "luminance"}[vary]] = x
        img = stimuli.gabor(kw["rho"], c, radius=kw["radius"], luminance=kw["luminance"],
                            size=g.size, ppd=g.ppd)
        return stimuli.to_rgb(img, colour) if colour != "ach" else img
    return make


def _noise(lum: float) -> Stim:
    return lambda x, c, g: stimuli.band_limited_noise(x, c, luminance=lum, size=g.size,
                                                      ppd=g.ppd)


def _coherent_mask(x: float, g: Grid) -> np.ndarray:
    return stimuli.grating(2.0, x, luminance=32.0, size=g.size, ppd=g.ppd)


def _coherent_test(x: float, c: float, g: Grid) -> np.ndarray:
    gab = stimuli.gabor(2.0, c, radius=0.5, luminance=32.0, size=g.size, ppd=g.ppd)
    return _coherent_mask(x, g) + gab - 32.0


def _noise_mask(x: float, g: Grid) -> np.ndarray:
    return stimuli.lowpass_noise(12.0, x, luminance=37.0, size=g.size, ppd=g.ppd)


def _noise_test(x: float, c: float, g: Grid) -> np.ndarray:
    gab = stimuli.gabor(1.2, c, radius=0.8, luminance=37.0, size=g.size, ppd=g.ppd)
    return _noise_mask(x, g) + gab - 37.0


_SQ = math.sqrt(math.pi)
_C0_COHERENT = float(1.0 / human.barten_csf(2.0, 32.0, _SQ * 0.5))
_C0_NOISE = float(1.0 / human.barten_csf(1.2, 37.0, _SQ * 0.8))
MATCH_LUMINANCE = 10.0
MATCH_REF_RHO = 5.0
MATCH_RHO_RANGE = (0.25, 25.0)
MATCH_REF_CONTRAST = (0.02, 0.6)


def _match_threshold(rho):
    return 1.0 / human.barten_csf(rho, MATCH_LUMINANCE, FIELD_DEG)


_BARTEN = "Barten (2004) CSF"
TESTS: dict[str, HVSTest] = {t.key: t for t in (
    HVSTest("detection_gabor", "Contrast detection: achromatic Gabor (R 1 deg, 100 cd/m^2)",
            "detection", "spatial frequency [cpd]", (0.5, 32.0), _gabor(radius=1.0, lum=100.0),
            _uniform(100.0), lambda x: 1.0 / human.barten_csf(x, 100.0, _SQ * 1.0), _BARTEN),
    HVSTest("detection_noise", "Contrast detection: band-limited noise (100 cd/m^2)",
            "detection", "band centre [cpd]", (0.5, 32.0), _noise(100.0), _uniform(100.0),
            lambda x: 1.0 / human.barten_csf(x, 100.0, FIELD_DEG), _BARTEN),
    HVSTest("detection_rg", "Contrast detection: red-green Gabor (R 1 deg, 100 cd/m^2)",
            "detection", "spatial frequency [cpd]", (0.5, 32.0),
            _gabor(radius=1.0, lum=100.0, colour="rg"), _uniform(100.0),
            lambda x: 1.0 / human.castle_chromatic_csf(x, 100.0, math.pi, "rg"),
            "castleCSF chromatic (Ashraf et al. 2024)"),
    HVSTest("detection_yv", "Contrast detection: yellow-violet Gabor (R 1 deg, 100 cd/m^2)",
            "detection", "spatial frequency [cpd]", (0.5, 32.0),
            _gabor(radius=1.0, lum=100.0, colour="yv"), _uniform(100.0),
            lambda x: 1.0 / human.castle_chromatic_csf(x, 100.0, math.pi, "yv"),
            "castleCSF chromatic (Ashraf et al. 2024)"),
    HVSTest("detection_luminance", "Contrast detection: luminance (2 cpd Gabor, R 1 deg)",
            "detection", "background luminance [cd/m^2]", (0.1, 200.0),
            _gabor(rho=2.0, radius=1.0, vary="luminance"), lambda x, g: np.full(
                (g.size, g.size), x), lambda x: 1.0 / human.barten_csf(2.0, x, _SQ), _BARTEN),
    HVSTest("detection_area", "Contrast detection: area (8 cpd Gabor, 100 cd/m^2)",
            "detection", "area [deg^2]", (math.pi * 0.1 ** 2, math.pi),
            _gabor(rho=8.0, lum=100.0, vary="area"), _uniform(100.0),
            lambda x: 1.0 / human.barten_csf(8.0, 100.0, np.sqrt(x)), _BARTEN),
    HVSTest("masking_coherent", "Contrast masking: phase-coherent (2 cpd Gabor on 2 cpd "
            "grating, 32 cd/m^2)", "masking", "mask contrast", (0.005, 0.25), _coherent_test,
            _coherent_mask, lambda x: human.legge_foley_threshold(x, _C0_COHERENT),
            "Legge & Foley (1980) TvC, eps 0.6"),
    HVSTest("masking_noise", "Contrast masking: phase-incoherent (1.2 cpd Gabor on 12 cpd "
            "low-pass noise, 37 cd/m^2)", "masking", "mask RMS contrast", (0.005, 0.25),
            _noise_test, _noise_mask, lambda x: human.noise_masking_threshold(x, _C0_NOISE),
            "linear amplifier noise masking (Legge, Kersten & Burgess 1987), k 0.5"),
    HVSTest("matching", "Contrast matching: 5 cpd reference grating (10 cd/m^2)", "matching",
            "test frequency [cpd]", MATCH_RHO_RANGE,
            lambda x, c, g: stimuli.grating(x, c, luminance=MATCH_LUMINANCE, size=g.size,
                                            ppd=g.ppd),
            _uniform(MATCH_LUMINANCE), _match_threshold,
            "Kulikowski (1976) matching with Barten (2004) thresholds"),
)}
"""The nine tests, keyed by their short names (table 1 of the paper)."""


# --- running --------------------------------------------------------------------------------

class _Features:
    """Encoder calls in batches, display encoding included."""

    def __init__(self, embed: Embed, grid: Grid) -> None:
        self.embed = embed
        self.grid = grid
        self.images = 0

    def __call__(self, images: list[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(images), self.grid.batch):
            chunk = np.stack([stimuli.encode_display(im) for im in
                              images[start:start + self.grid.batch]])
            f = np.asarray(self.embed(chunk), dtype=np.float64)
            out.append(f.reshape(len(chunk), -1))
            self.images += len(chunk)
        return np.concatenate(out)


def _run_threshold_test(test: HVSTest, feats: _Features, grid: Grid) -> TestResult:
    x = test.conditions(grid)
    c_h = np.asarray(test.human_threshold(x), dtype=np.float64)
    f_ref = feats([test.ref_image(float(v), grid) for v in x])
    ratios = grid.ratio_values()
    lo, hi = test.contrast_range
    imgs, pair_ratio, pair_cond = [], [], []
    for i, v in enumerate(x):
        for r in ratios:
            imgs.append(test.test_image(float(v), float(np.clip(c_h[i] * r, lo, hi)), grid))
            pair_ratio.append(r)
            pair_cond.append(i)
    cond = np.array(pair_cond)
    s = angular_response(feats(imgs), f_ref[cond])
    ratio = np.array(pair_ratio)
    score = spearman(ratio, s)
    criterion = float(np.median(s))

    def respond(contrasts: np.ndarray) -> np.ndarray:
        f = feats([test.test_image(float(v), float(c), grid)
                   for v, c in zip(x, contrasts, strict=True)])
        return angular_response(f, f_ref)

    if np.ptp(s) > 0:
        model = bisect_log(respond, np.full(len(x), criterion), lo, hi, grid.steps)
    else:  # a blind model: no threshold anywhere
        model = np.full(len(x), np.nan)
    err = rmse(np.log10(model), np.log10(c_h))
    return TestResult(test.key, test.title, test.kind, test.x_name, x, c_h, model, score, err,
                      0.0, test.reference, ratio=ratio, response=s,
                      extra={"condition": x[cond], "criterion": np.array([criterion])})


def _run_matching(test: HVSTest, feats: _Features, grid: Grid) -> TestResult:
    rhos = test.conditions(grid)
    refs = np.logspace(*np.log10(MATCH_REF_CONTRAST), grid.conditions)
    f_uniform = feats([test.ref_image(0.0, grid)])
    f_refs = feats([test.test_image(MATCH_REF_RHO, float(c), grid) for c in refs])
    s_refs = angular_response(f_refs, f_uniform)
    rho_all = np.tile(rhos, len(refs))
    ref_all = np.repeat(refs, len(rhos))
    target = np.repeat(s_refs, len(rhos))

    def respond(contrasts: np.ndarray) -> np.ndarray:
        f = feats([test.test_image(float(r), float(c), grid)
                   for r, c in zip(rho_all, contrasts, strict=True)])
        return angular_response(f, f_uniform)

    lo, hi = test.contrast_range
    model = bisect_log(respond, target, lo, hi, grid.steps)
    t_ref = test.human_threshold(np.float64(MATCH_REF_RHO))
    hum = human.kulikowski_match(ref_all, t_ref, test.human_threshold(rho_all))
    err = rmse(np.log10(model), np.log10(hum))
    score = spearman(np.log10(hum), np.log10(model))
    return TestResult(test.key, test.title, test.kind, test.x_name, rho_all, hum, model, score,
                      err, 0.0, test.reference, extra={"ref_contrast": ref_all})


def run_test(test: HVSTest | str, embed: Embed, grid: Grid | None = None) -> TestResult:
    """Run one test (a key of :data:`TESTS` or an :class:`HVSTest`) on ``embed``."""
    grid = grid or Grid()
    test = TESTS[test] if isinstance(test, str) else test
    feats = _Features(embed, grid)
    start = time.perf_counter()
    if test.kind == "matching":
        result = _run_matching(test, feats, grid)
    else:
        result = _run_threshold_test(test, feats, grid)
    result.seconds = time.perf_counter() - start
    result.extra["images"] = np.array([feats.images])
    return result


def run_battery(embed: Embed, grid: Grid | None = None, tests: list[str] | None = None,
                progress: Callable[[str], None] | None = None) -> list[TestResult]:
    """Run several tests (default: all nine, in the paper's order) on ``embed``."""
    keys = list(TESTS) if tests is None else tests
    for key in keys:
        if key not in TESTS:
            raise ValueError(f"unknown test {key!r}; known: {', '.join(TESTS)}")
    results = []
    for i, key in enumerate(keys, 1):
        result = run_test(key, embed, grid)
        results.append(result)
        if progress is not None:
            progress(f"hvs test {i}/{len(keys)} {key}: spearman {result.spearman:.3f} "
                     f"rmse {result.rmse:.3f} ({result.seconds:.1f} s)")
    return results


def module_embedder(module, device: str | None = None) -> Embed:
    """An :data:`Embed` over a torch module that takes ``(N, 3, H, W)`` display values in [0, 1]
    (adapters apply their own normalisation) and returns features ``(N, ...)``."""
    import torch

    dev = torch.device(device) if device else next(
        (p.device for p in module.parameters()), torch.device("cpu"))
    module = module.eval()

    @torch.no_grad()
    def embed(images: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).to(dev)
        out = module(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().reshape(len(images), -1).cpu().numpy()

    return embed

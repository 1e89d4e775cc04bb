"""Model response to a stimulus, threshold search and the scores of the low-level vision probe.

Cai et al., CVPR 2025 (arXiv:2502.20256), section 3.2: a model ``f`` "sees" a test image ``T``
against a reference ``R`` (the same image without the target) with the normalised angle

    ``S(T, R) = arccos(cos(f(T), f(R))) / pi``  (in [0, 1]),

computed on the flattened features. Thresholds are contrasts where ``S`` reaches a criterion,
found by bisection in log contrast (the authors' contour lines of ``S`` over a contrast grid,
and their ``scipy.optimize.root_scalar`` for contrast matching, solve the same equation).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["angular_response", "bisect_log", "rmse", "spearman"]


def angular_response(f_test: np.ndarray, f_ref: np.ndarray) -> np.ndarray:
    """``arccos(cos(f_test, f_ref)) / pi`` per row (paper section 3.2).

    Parameters
    ----------
    f_test, f_ref : numpy.ndarray
        Features ``(N, ...)``; each row is flattened. ``f_ref`` may have one row (broadcast).

    Returns
    -------
    numpy.ndarray
        ``(N,)`` responses in [0, 1]; 0 for identical directions, 0.5 orthogonal, 1 opposite.
        A zero feature vector gives cosine 0 (response 0.5), as torch's ``cosine_similarity``
        with its epsilon would.
    """
    a = np.asarray(f_test, dtype=np.float64).reshape(len(f_test), -1)
    b = np.asarray(f_ref, dtype=np.float64).reshape(len(f_ref), -1)
    if b.shape[0] == 1 and a.shape[0] != 1:
        b = np.broadcast_to(b, a.shape)
    if a.shape != b.shape:
        raise ValueError(f"feature shapes differ: {a.shape} vs {b.shape}")
    na = np.linalg.norm(a, axis=1)
    nb = np.linalg.norm(b, axis=1)
    cos = np.einsum("nd,nd->n", a, b) / np.maximum(na * nb, 1e-12)
    return np.arccos(np.clip(cos, -1.0, 1.0)) / np.pi


def bisect_log(response: Callable[[np.ndarray], np.ndarray], target: np.ndarray,
               lo: float, hi: float, steps: int = 12) -> np.ndarray:
    """Contrasts where an increasing response reaches ``target``, for many conditions at once.

    Bisection in ``log10`` contrast on ``[lo, hi]``; each step calls ``response`` once with the
    midpoints of every condition still open, so an encoder sees one batch per step.

    Parameters
    ----------
    response : callable
        ``response(contrasts)`` with ``contrasts`` ``(K,)`` (one per condition, in condition
        order) returns ``(K,)`` responses.
    target : numpy.ndarray
        ``(K,)`` criterion per condition.
    lo, hi : float
        Search interval of contrast (> 0).
    steps : int
        Bisection steps; the result is within ``(log10 hi - log10 lo) / 2^steps`` decades.

    Returns
    -------
    numpy.ndarray
        ``(K,)`` contrasts; ``nan`` where even ``hi`` stays below the target (never detected)
        and ``lo`` where ``lo`` already reaches it.
    """
    target = np.asarray(target, dtype=np.float64)
    k = len(target)
    a = np.full(k, np.log10(lo))
    b = np.full(k, np.log10(hi))
    s_hi = response(10.0 ** b)
    s_lo = response(10.0 ** a)
    never = s_hi < target
    always = s_lo >= target
    for _ in range(steps):
        mid = 0.5 * (a + b)
        above = response(10.0 ** mid) >= target
        b = np.where(above, mid, b)
        a = np.where(above, a, mid)
    out = 10.0 ** (0.5 * (a + b))
    out[always] = lo
    out[never] = np.nan
    return out


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); ``nan`` if either is constant."""
    from scipy.stats import spearmanr

    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3 or np.ptp(x[ok]) == 0 or np.ptp(y[ok]) == 0:
        return float("nan")
    return float(spearmanr(x[ok], y[ok]).statistic)


def rmse(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square difference over the finite pairs (``nan`` if none)."""
    d = np.asarray(x, dtype=np.float64).ravel() - np.asarray(y, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    return float(np.sqrt(np.mean(d ** 2))) if d.size else float("nan")

"""Response, threshold search and scores of the low-level vision probe."""

import numpy as np
import pytest
from scipy.stats import rankdata

from medcl.contrastive.hvs.response import angular_response, bisect_log, rmse, spearman

pytestmark = pytest.mark.usefixtures("one_thread")


def test_angular_response_hand_cases():
    ref = np.array([[1.0, 0.0, 0.0]])
    test = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [-1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    s = angular_response(test, ref)
    assert np.allclose(s, [0.0, 0.5, 1.0, 0.25])


def test_angular_response_flattens_feature_maps_like_the_paper():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4, 5, 5)), rng.normal(size=(3, 4, 5, 5))
    s = angular_response(a, b)
    for i in range(3):  # loop transcription of arccos(cos(f(T), f(R))) / pi
        x, y = a[i].ravel(), b[i].ravel()
        cos = x @ y / np.linalg.norm(x) / np.linalg.norm(y)
        assert s[i] == pytest.approx(np.arccos(cos) / np.pi, rel=1e-12)


def test_bisect_log_finds_known_thresholds_in_one_batch_per_step():
    thresholds = np.array([0.003, 0.05, 0.4])
    calls = []

    def response(c):
        calls.append(len(c))
        return c / thresholds  # reaches 1 at the threshold

    found = bisect_log(response, np.ones(3), 1e-3, 1.0, steps=20)
    assert np.allclose(found, thresholds, rtol=1e-4)
    assert calls == [3] * 22  # hi, lo, then one call per step for all conditions


def test_bisect_log_censoring():
    found = bisect_log(lambda c: np.array([0.1, 0.9]), np.array([0.5, 0.5]), 1e-3, 1.0)
    assert np.isnan(found[0]) and found[1] == pytest.approx(1e-3)


def test_spearman_against_ranks_and_rmse():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=30), rng.normal(size=30)
    y[:5] = y[0]  # ties: average ranks
    rx, ry = rankdata(x), rankdata(y)
    ref = np.corrcoef(rx, ry)[0, 1]  # Pearson of the average ranks
    assert spearman(x, y) == pytest.approx(ref, rel=1e-12)
    assert np.isnan(spearman(np.ones(5), np.arange(5)))
    assert rmse([1.0, 2.0, np.nan], [1.0, 4.0, 3.0]) == pytest.approx(np.sqrt(2.0))

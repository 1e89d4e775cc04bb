"""The nine tests run end to end on synthetic encoders whose behaviour is known."""

import numpy as np
import pytest

from medcl.contrastive.hvs import battery
from medcl.contrastive.hvs.battery import TESTS, Grid, run_battery, run_test

pytestmark = pytest.mark.usefixtures("one_thread")

GRID = Grid(conditions=3, ratios=4, steps=8)


def pixels(images):
    """The display values themselves: a 'model' that sees every pixel change."""
    return images.reshape(len(images), -1)


def blind(images):
    return np.ones((len(images), 4))


def test_nine_tests_in_the_papers_order():
    assert list(TESTS) == ["detection_gabor", "detection_noise", "detection_rg", "detection_yv",
                           "detection_luminance", "detection_area", "masking_coherent",
                           "masking_noise", "matching"]
    assert [t.kind for t in TESTS.values()].count("detection") == 6


@pytest.mark.parametrize("key", ["detection_gabor", "detection_rg", "masking_coherent",
                                 "masking_noise"])
def test_pixel_observer_response_grows_with_contrast_in_every_condition(key):
    r = run_test(key, pixels, GRID)
    per = r.response.reshape(GRID.conditions, GRID.ratios)
    assert np.all(np.diff(per, axis=1) > 0)
    assert r.spearman > 0
    assert np.all(np.isfinite(r.model)) and np.isfinite(r.rmse)
    # the threshold search lands where the response equals the criterion
    crit = float(r.extra["criterion"][0])
    f_ref = battery._Features(pixels, GRID)([TESTS[key].ref_image(float(x), GRID) for x in r.x])
    f_t = battery._Features(pixels, GRID)([TESTS[key].test_image(float(x), float(c), GRID)
                                          for x, c in zip(r.x, r.model, strict=True)])
    s = battery.angular_response(f_t, f_ref)
    assert np.allclose(s, crit, rtol=0.05)


def test_pixel_observer_matches_gratings_at_equal_contrast():
    # the angle between a grating and the uniform field depends on contrast, not frequency,
    # so a pixel observer's matches equal the reference contrast (where no aliasing occurs)
    r = run_test("matching", pixels, GRID)
    ok = r.x <= 20.0
    assert np.allclose(r.model[ok], r.extra["ref_contrast"][ok], rtol=0.1)
    assert r.kind == "matching" and np.isfinite(r.rmse)


def test_blind_encoder_scores_nan_and_no_thresholds():
    r = run_test("detection_area", blind, GRID)
    assert np.isnan(r.spearman) and np.all(np.isnan(r.model)) and np.isnan(r.rmse)


def test_battery_progress_and_bad_key():
    lines = []
    out = run_battery(pixels, GRID, tests=["detection_luminance", "detection_area"],
                      progress=lines.append)
    assert [r.key for r in out] == ["detection_luminance", "detection_area"]
    assert len(lines) == 2 and lines[0].startswith("hvs test 1/2 detection_luminance")
    assert set(out[0].summary()) >= {"test", "spearman", "rmse_log10"}
    with pytest.raises(ValueError, match="unknown test"):
        run_battery(pixels, GRID, tests=["nope"])


def test_module_embedder_batches_a_torch_module():
    import torch

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 8, stride=8), torch.nn.Flatten())
    emb = battery.module_embedder(net)
    x = np.random.default_rng(0).random((5, 32, 32, 3)).astype(np.float32)
    f = emb(x)
    assert f.shape == (5, 4 * 16)
    ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).detach().numpy()
    assert np.allclose(f, ref, atol=1e-6)

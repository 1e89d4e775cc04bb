"""Tests of dbsam.preprocess: intensity normalisation and SAM input geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medcl.dbsam.preprocess import (
    CT_PRESETS,
    MASK_PROMPT_LOGIT,
    PIXEL_MEAN,
    PIXEL_STD,
    SliceGeometry,
    normalize_intensity,
    slice_to_input,
)
from medcl.io.errors import ConfigError


def _ellipse(shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) / radii[0]) ** 2 + ((xx - centre[1]) / radii[1]) ** 2 <= 1.0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# -- normalize_intensity --------------------------------------------------------------------
def test_ct_default_window_is_medsam_soft_tissue() -> None:
    hu = np.array([-1000.0, -160.0, -60.0, 40.0, 140.0, 240.0, 3000.0])
    out = normalize_intensity(hu, "CT")
    # L40/W400 -> [-160, 240]; (x + 160) / 400
    np.testing.assert_allclose(out, [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0], atol=1e-6)
    assert out.dtype == np.float32


def test_ct_presets_and_explicit_window() -> None:
    hu = np.array([-2000.0, -1350.0, -600.0, 150.0, 500.0])
    lung = normalize_intensity(hu, "ct", preset="lung")  # L-600/W1500 -> [-1350, 150]
    assert CT_PRESETS["lung"] == (-600.0, 1500.0)
    np.testing.assert_allclose(lung, [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    win = normalize_intensity(np.array([0.0, 50.0, 100.0]), "ct", window=(50, 100))
    np.testing.assert_allclose(win, [0.0, 0.5, 1.0], atol=1e-6)
    liver = normalize_intensity(np.array([-45.0, 30.0, 105.0]), "ct", preset="liver")
    np.testing.assert_allclose(liver, [0.0, 0.5, 1.0], atol=1e-6)


def test_mr_percentiles_of_nonzero_voxels() -> None:
    vol = np.zeros((10, 10, 10), dtype=np.float32)
    values = np.arange(1, 201, dtype=np.float32)
    vol.flat[:200] = values  # 800 zeros, 200 non-zero voxels
    out = normalize_intensity(vol, "mr")
    lo, hi = np.percentile(values, [0.5, 99.5])
    expect = (np.clip(vol, lo, hi) - lo) / (hi - lo)
    np.testing.assert_allclose(out, expect, atol=1e-6)
    assert out.min() == 0.0 and out.max() == pytest.approx(1.0)
    # Had the zeros counted, the low percentile would be 0 and value 1 would not map to 0.
    assert out.flat[0] == 0.0 and np.percentile(vol, 0.5) == 0.0
    np.testing.assert_allclose(normalize_intensity(vol, "MRI"), out)
    np.testing.assert_allclose(normalize_intensity(vol, "other"), out)


@pytest.mark.parametrize("value", [0.0, 7.0])
@pytest.mark.parametrize("modality", ["mr", "other"])
def test_constant_volume_gives_zeros(value: float, modality: str) -> None:
    out = normalize_intensity(np.full((4, 5, 6), value), modality)
    assert out.shape == (4, 5, 6) and np.isfinite(out).all() and not out.any()


def test_bad_modality_and_presets() -> None:
    with pytest.raises(ConfigError, match="ct, mr, other"):
        normalize_intensity(np.zeros(3), "pet")
    with pytest.raises(ConfigError, match="soft-tissue.*lung"):
        normalize_intensity(np.zeros(3), "ct", preset="kidney")
    with pytest.raises(ConfigError, match="preset"):
        normalize_intensity(np.zeros(3), "mr", preset="lung")
    with pytest.raises(ConfigError, match="both"):
        normalize_intensity(np.zeros(3), "ct", window=(40, 400), preset="lung")
    with pytest.raises(ConfigError, match="width"):
        normalize_intensity(np.zeros(3), "ct", window=(40, 0))


# -- slice_to_input -------------------------------------------------------------------------
def test_slice_to_input_non_square_normalised_and_padded() -> None:
    img = np.full((30, 60), 0.5, dtype=np.float32)  # wide: resized to 32 x 64 inside 64 x 64
    x, geom = slice_to_input(img, 64)
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert geom.original == (30, 60) and geom.resized == (32, 64)
    assert geom.scale == pytest.approx(64 / 60)
    expect = (127.5 - torch.tensor(PIXEL_MEAN)) / torch.tensor(PIXEL_STD)
    torch.testing.assert_close(x[:, :32, :], expect.view(3, 1, 1).expand(3, 32, 64))
    assert not x[:, 32:, :].any()  # zero padding at the bottom, after normalisation

    tall, geom_t = slice_to_input(np.zeros((60, 30)), 64)
    assert geom_t.resized == (64, 32) and not tall[:, :, 32:].any()
    torch.testing.assert_close(
        tall[:, :, :32],
        (-torch.tensor(PIXEL_MEAN) / torch.tensor(PIXEL_STD)).view(3, 1, 1).expand(3, 64, 32),
    )


def test_slice_to_input_rgb_and_downscaling() -> None:
    rgb = np.zeros((100, 80, 3), dtype=np.float32)
    rgb[..., 0] = 1.0
    x, geom = slice_to_input(rgb, 32)  # 100 x 80 -> 32 x 26 (SAM rounding)
    assert geom.resized == (32, 26)
    red = (255.0 - PIXEL_MEAN[0]) / PIXEL_STD[0]
    assert torch.allclose(x[0, :, :26], torch.tensor(red))
    assert torch.allclose(x[1, :, :26], torch.tensor(-PIXEL_MEAN[1] / PIXEL_STD[1]))
    assert not x[:, :, 26:].any()


def test_slice_to_input_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        slice_to_input(np.full((8, 8), 255.0), 32)
    with pytest.raises(ValueError, match="shape"):
        slice_to_input(np.zeros((8, 8, 2)), 32)
    with pytest.raises(ConfigError, match="multiple of 4"):
        slice_to_input(np.zeros((8, 8)), 30)


# -- SliceGeometry --------------------------------------------------------------------------
def test_box_maps_onto_the_object_in_the_input() -> None:
    H, W, S = 90, 150, 128
    img = np.zeros((H, W), dtype=np.float32)
    box = np.array([40, 20, 99, 59])  # x0, y0, x1, y1 inclusive
    img[box[1] : box[3] + 1, box[0] : box[2] + 1] = 1.0
    x, geom = slice_to_input(img, S)
    bright = (x[0] > 0).numpy()
    rows, cols = np.flatnonzero(bright.any(1)), np.flatnonzero(bright.any(0))
    bx = geom.box_to_input(box)
    np.testing.assert_allclose(bx, box * np.array([128 / 150, 77 / 90] * 2))
    # The object's extent in the input agrees with the mapped box within a pixel (resampling).
    assert abs(cols[0] - bx[0]) <= 1.5 and abs(cols[-1] - bx[2]) <= 1.5
    assert abs(rows[0] - bx[1]) <= 1.5 and abs(rows[-1] - bx[3]) <= 1.5
    assert geom.box_to_input(np.stack([box, box])).shape == (2, 4)


@pytest.mark.parametrize("shape", [(70, 120), (130, 60), (64, 64)])
def test_mask_round_trip_through_low_res_logits(shape: tuple[int, int]) -> None:
    H, W = shape
    mask = _ellipse(shape, (0.45 * H, 0.55 * W), (0.3 * H, 0.25 * W))
    geom = SliceGeometry.for_shape(shape, 256)
    prompt = geom.mask_to_input(mask)
    assert prompt.shape == (64, 64) and prompt.dtype == np.float32
    assert prompt.max() == pytest.approx(MASK_PROMPT_LOGIT)
    assert prompt.min() == pytest.approx(-MASK_PROMPT_LOGIT)
    back = geom.logits_to_slice(torch.from_numpy(prompt)[None])
    assert back.shape == shape and back.dtype == np.float32
    assert _iou(back > 0, mask) > 0.95
    np.testing.assert_array_equal(geom.logits_to_slice(prompt), back)


def test_padding_of_mask_prompt_is_background() -> None:
    geom = SliceGeometry.for_shape((40, 80), 64)  # resized 32 x 64, bottom half padding
    prompt = geom.mask_to_input(np.ones((40, 80), bool))
    np.testing.assert_allclose(prompt[:8], MASK_PROMPT_LOGIT, atol=1e-4)
    np.testing.assert_allclose(prompt[8:], -MASK_PROMPT_LOGIT, atol=1e-4)


def test_logits_shape_checked() -> None:
    geom = SliceGeometry.for_shape((40, 80), 64)
    with pytest.raises(ValueError, match="16 x 16"):
        geom.logits_to_slice(np.zeros((32, 32)))
    with pytest.raises(ValueError, match="mask shape"):
        geom.mask_to_input(np.zeros((80, 40), bool))

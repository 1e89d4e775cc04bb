"""Tests of medcl.io.images: PNG/JPEG images in [0, 1] and integer label masks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medcl.io import InputFileError
from medcl.io.images import min_max, read_image, read_mask, to_unit_range


def test_read_image_scales_by_bit_depth_and_drops_alpha(tmp_path):
    grey = np.array([[0, 128], [255, 64]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "g.png")
    pixels, flags = read_image(tmp_path / "g.png")
    assert pixels.shape == (2, 2, 1) and flags == []
    np.testing.assert_allclose(pixels[..., 0], grey / 255.0)
    rgba = np.dstack([np.full((3, 4, 3), 51, np.uint8), np.full((3, 4), 9, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "c.png")
    pixels, flags = read_image(tmp_path / "c.png")
    assert pixels.shape == (3, 4, 3) and flags == ["alpha"]
    np.testing.assert_allclose(pixels, 0.2)
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "d.png")
    np.testing.assert_allclose(read_image(tmp_path / "d.png")[0][..., 0], [[0.0, 1.0]])


def test_unit_range_and_min_max():
    assert to_unit_range(np.array([1.0, 3.0]))[1] is True
    np.testing.assert_allclose(min_max(np.array([1.0, 3.0, np.nan])), [1 / 3, 1.0, 0.0])  # NaN -> 0
    np.testing.assert_array_equal(min_max(np.full(3, 7.0)), np.zeros(3))


def test_read_mask_codes_binary_and_palette(tmp_path):
    Image.fromarray(np.array([[0, 255], [255, 0]], np.uint8)).save(tmp_path / "b.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), [[0, 1], [1, 0]])
    pal = Image.fromarray(np.array([[0, 2], [3, 2]], np.uint8), mode="L").convert("P")
    pal.save(tmp_path / "p.png")
    assert set(np.unique(read_mask(tmp_path / "p.png"))) <= {0, 2, 3}
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(InputFileError, match="single-channel"):
        read_mask(tmp_path / "rgb.png")


@pytest.mark.parametrize("reader", [read_image, read_mask])
def test_missing_and_corrupt_files(tmp_path, reader):
    with pytest.raises(InputFileError, match="not found"):
        reader(tmp_path / "none.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputFileError, match="bad.png"):
        reader(tmp_path / "bad.png")

"""Tests of dbsam.prompts: boxes from masks, jitter, parsing, validation, propagation."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.dbsam.prompts import (
    box3d_to_slices,
    expand_box,
    jitter_box,
    mask_box,
    parse_box3d,
    parse_box_slice,
    propagate,
    px_at_256,
)
from medcl.io.errors import ConfigError


def _ellipsoid(shape: tuple[int, int, int], centre, radii) -> np.ndarray:
    grids = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij", sparse=True)
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grids, centre, radii, strict=True))
    return r2 <= 1.0


def test_mask_box() -> None:
    m = np.zeros((20, 30), bool)
    m[4:9, 10:25] = True  # rows 4..8 (y), columns 10..24 (x)
    m[12, 3] = True
    np.testing.assert_array_equal(mask_box(m), [3, 4, 24, 12])
    assert mask_box(np.zeros((5, 5), bool)) is None
    assert mask_box(m).dtype == np.int64


def test_expand_box_clips_to_the_slice() -> None:
    np.testing.assert_array_equal(expand_box(np.array([2, 3, 10, 12]), 5, (15, 13)), [0, 0, 12, 14])


def test_jitter_is_outward_only_within_bounds() -> None:
    rng = np.random.default_rng(0)
    shape = (100, 120)
    box = np.array([30, 40, 70, 60])
    seen = []
    for _ in range(2000):
        j = jitter_box(box, shape, 19, rng)
        seen.append((j - box) * np.array([-1, -1, 1, 1]))  # > 0: the side moved outward
    outward = np.array(seen)
    # every side moves outward by 0..19 px (the authors' randint(0, 20)), never inward, and
    # every value is drawn
    assert outward.min() == 0 and outward.max() == 19
    for side in range(4):
        assert set(outward[:, side].tolist()) == set(range(20))
    # Near the border: clipped to the image, still containing the box.
    for _ in range(200):
        j = jitter_box(np.array([2, 1, 117, 98]), shape, 19, rng)
        assert j.min() >= 0 and j[2] <= 119 and j[3] <= 99
        assert j[0] <= 2 and j[1] <= 1 and j[2] >= 117 and j[3] >= 98
    np.testing.assert_array_equal(jitter_box(box, shape, 0, rng), box)
    with pytest.raises(ValueError):
        jitter_box(box, shape, -1, rng)


def test_box_pixels_scale_from_the_256_grid() -> None:
    assert px_at_256(19, (256, 256)) == 19
    assert px_at_256(19, (512, 512)) == 38
    assert px_at_256(9, (80, 80)) == 3  # 2.81 rounds to 3
    assert px_at_256(9, (512, 300)) == 18  # the longest side counts
    assert px_at_256(0, (1000, 1000)) == 0


def test_parse_box3d() -> None:
    assert parse_box3d("40,52,10,88,97,21") == (40, 52, 10, 88, 97, 21)
    assert parse_box3d(" 1, 2 ,3,4,5,6 ") == (1, 2, 3, 4, 5, 6)
    for bad in ("1,2,3,4,5", "1,2,3,4,5,6,7", "a,b,c,d,e,f", "1.5,2,3,4,5,6", ""):
        with pytest.raises(ConfigError, match="--box") as err:
            parse_box3d(bad)
        assert "X0,Y0,Z0,X1,Y1,Z1" in str(err.value)
    with pytest.raises(ConfigError, match="--box.*empty: z1 = 3 < z0 = 5"):
        parse_box3d("1,2,5,4,5,3")


def test_parse_box_slice() -> None:
    assert parse_box_slice("15:40,52,88,97") == (15, (40, 52, 88, 97))
    assert parse_box_slice(" 0 : 1,2,3,4") == (0, (1, 2, 3, 4))
    for bad in ("15,40,52,88,97", "15:40,52,88", "x:1,2,3,4", "-1:1,2,3,4"):
        with pytest.raises(ConfigError, match="--box-slice"):
            parse_box_slice(bad)
    with pytest.raises(ConfigError, match="--box-slice.*empty: x1"):
        parse_box_slice("3:10,2,5,4")


def test_box3d_to_slices() -> None:
    out = box3d_to_slices((3, 4, 2, 10, 12, 5), (20, 30, 10))
    assert list(out) == [2, 3, 4, 5]
    for box in out.values():
        np.testing.assert_array_equal(box, [3, 4, 10, 12])
    # The 2-D box is the xyxy box of the transposed slice data[:, :, z].T.
    vol = np.zeros((20, 30, 10), bool)
    vol[3:11, 4:13, 2:6] = True
    np.testing.assert_array_equal(mask_box(vol[:, :, 3].T), out[3])
    for bad in ((3, 4, 2, 20, 12, 5), (-1, 4, 2, 10, 12, 5), (3, 4, 2, 10, 12, 10)):
        with pytest.raises(ConfigError, match=r"outside the volume of shape 20 x 30 x 10") as err:
            box3d_to_slices(bad, (20, 30, 10))
        assert "0 <= x <= 19" in str(err.value)
    with pytest.raises(ConfigError, match="empty"):
        box3d_to_slices((5, 4, 2, 3, 12, 5), (20, 30, 10))


def test_propagation_stops_where_the_structure_ends() -> None:
    shape = (40, 50, 20)  # X, Y, Z
    gt = _ellipsoid(shape, (20, 24, 8.5), (12, 15, 3.9))  # slices 5..12
    zs = np.flatnonzero(gt.any(axis=(0, 1)))
    assert zs[0] == 5 and zs[-1] == 12
    slices = {z: gt[:, :, z].T for z in range(shape[2])}  # (Y, X) = (H, W)
    calls: list[int] = []

    def predict(z: int, box: np.ndarray) -> np.ndarray:
        calls.append(z)
        inside = np.zeros(slices[z].shape, bool)
        x0, y0, x1, y1 = expand_box(box, 2, slices[z].shape)
        inside[y0 : y1 + 1, x0 : x1 + 1] = True
        return slices[z] & inside

    key_box = mask_box(slices[8])
    out = propagate(predict, 8, key_box, shape[2], margin=3)
    assert list(out) == list(range(5, 13))
    for z, m in out.items():
        np.testing.assert_array_equal(m, slices[z])
    assert calls[0] == 8 and sorted(calls) == list(range(4, 14))  # stopped at 4 and 13


def test_propagation_edge_cases() -> None:
    n = 6
    full = np.ones((8, 8), bool)
    out = propagate(lambda z, b: full, 0, np.array([0, 0, 7, 7]), n)
    assert list(out) == list(range(n))  # walks to both ends of the volume
    assert propagate(lambda z, b: np.zeros((8, 8), bool), 2, np.array([0, 0, 3, 3]), n) == {}
    small = np.zeros((8, 8), bool)
    small[0, :3] = True
    assert propagate(lambda z, b: small, 2, np.array([0, 0, 3, 3]), n, min_pixels=4) == {}
    with pytest.raises(ValueError):
        propagate(lambda z, b: full, 6, np.array([0, 0, 3, 3]), n)


def test_parse_labelled_box() -> None:
    from medcl.dbsam.prompts import parse_labelled_box

    assert parse_labelled_box("1,2,3,4,5,6", 7) == (7, (1, 2, 3, 4, 5, 6))
    assert parse_labelled_box("3=1,2,3,4,5,6", 7) == (3, (1, 2, 3, 4, 5, 6))
    for bad in ("0=1,2,3,4,5,6", "a=1,2,3,4,5,6", "300=1,2,3,4,5,6"):
        with pytest.raises(ConfigError, match="label code"):
            parse_labelled_box(bad, 1)
    with pytest.raises(ConfigError, match="empty"):
        parse_labelled_box("2=5,2,3,4,5,6", 1)

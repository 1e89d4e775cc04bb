"""Tests of pirads.phantom: synthetic T2 prostate volumes with zone labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medcl.io.nifti import axial_check, read_labels, read_volume
from medcl.pirads.phantom import HARD, ZONES, make_phantom, write_phantoms

SEEDS = range(6)


@pytest.fixture(scope="module")
def phantoms() -> list[tuple[np.ndarray, ...]]:
    return [make_phantom(s, return_gland=True) for s in SEEDS]


def test_labels_consistent(phantoms) -> None:
    for t2, lab, aff, gland in phantoms:
        assert t2.shape == lab.shape == gland.shape == (96, 96, 24)
        assert t2.dtype == np.float32 and lab.dtype == np.uint8 and aff.shape == (4, 4)
        assert set(np.unique(lab)) == {0, *ZONES}  # every zone present, nothing else
        assert np.all(gland[lab > 0])  # every zone voxel inside the gland
        zs = np.flatnonzero(gland.any(axis=(0, 1)))
        third = zs[0] + (zs[-1] - zs[0] + 1) / 3
        dpu_z = np.nonzero(lab == 3)[2]
        assert dpu_z.max() < third  # DPU only in the apical (lowest-z) third
        assert np.isfinite(t2).all() and t2.min() >= 0


def test_anatomy_and_intensity_order(phantoms) -> None:
    for t2, lab, _, _ in phantoms:
        y = {k: np.nonzero(lab == k)[1].mean() for k in ZONES}
        assert y[1] < y[2] < y[4]  # PZ posterior to TZ, AFS anterior (axis 1 = anterior)
        mean = {k: t2[lab == k].mean() for k in ZONES}
        assert mean[1] > mean[2] > mean[4]
        assert mean[1] > mean[3] > mean[4]  # the DPU's dark wall stands out from the PZ


def test_determinism_and_variability(phantoms) -> None:
    t2, lab, aff = make_phantom(3)
    np.testing.assert_array_equal(t2, phantoms[3][0])
    np.testing.assert_array_equal(lab, phantoms[3][1])
    tz_sizes = {int((p[1] == 2).sum()) for p in phantoms}
    assert len(tz_sizes) == len(phantoms)
    assert not np.array_equal(phantoms[0][1], phantoms[1][1])


def test_affine_and_oblique() -> None:
    _, lab, aff = make_phantom(0, shape=(40, 40, 12), spacing=(1.0, 1.0, 4.0))
    assert lab.shape == (40, 40, 12) and set(np.unique(lab)) == {0, 1, 2, 3, 4}
    np.testing.assert_allclose(np.linalg.norm(aff[:3, :3], axis=0), [1.0, 1.0, 4.0])
    _, _, tilted = make_phantom(0, oblique_deg=50)
    np.testing.assert_allclose(np.linalg.norm(tilted[:3, :3], axis=0), [0.5, 0.5, 3.0])
    assert tilted[2, 2] == pytest.approx(3.0 * np.cos(np.radians(50)))


def test_write_phantoms_readable_pairs(tmp_path: Path) -> None:
    images, labels = write_phantoms(tmp_path / "ph", n=3, seed=5, shape=(48, 48, 12))
    names = sorted(p.name for p in images.iterdir())
    assert names == ["case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz"]
    assert sorted(p.name for p in labels.iterdir()) == names
    for i, name in enumerate(names):
        vol = read_volume(images / name)
        lab = read_labels(labels / name, allowed=set(ZONES), like=vol)
        t2, ref, aff = make_phantom(5 + i, shape=(48, 48, 12))
        np.testing.assert_allclose(vol.data, t2, rtol=1e-6)
        np.testing.assert_array_equal(lab.data, ref)
        np.testing.assert_allclose(vol.affine, aff, atol=1e-5)
        assert vol.spacing == pytest.approx((0.5, 0.5, 3.0))
        assert axial_check(vol) is None


# -- the held-out hard family (issue 12, "check beyond phantoms") -------------------------------
def _inplane_offset_mm(lab: np.ndarray, spacing) -> float:
    x, y, _ = np.nonzero(lab > 0)
    centre = (np.asarray(lab.shape[:2]) - 1) / 2
    return float(np.hypot(*((np.array([x.mean(), y.mean()]) - centre) * spacing[:2])))


def test_hard_family_off_centre_oblique_and_in_its_own_grid() -> None:
    for seed in range(3):
        t2, lab, aff, gland = make_phantom(seed, family="hard", return_gland=True)
        assert t2.shape == lab.shape == tuple(HARD["shape"]) and t2.dtype == np.float32
        assert set(np.unique(lab)) == {0, *ZONES} and (gland == (lab > 0)).all()
        assert np.isfinite(t2).all() and t2.min() >= 0
        # the gland lies whole inside the volume, off-centre (the easy ones lie within 4.1 mm)
        for axis in range(3):
            assert not gland.take([0, -1], axis=axis).any()
        assert _inplane_offset_mm(lab, HARD["spacing"]) > 5.0
        _, easy, _ = make_phantom(seed)
        assert _inplane_offset_mm(easy, (0.5, 0.5, 3.0)) < 4.1
        # an oblique acquisition: slices tilted 8-20 degrees about R-L, spacing kept
        np.testing.assert_allclose(np.linalg.norm(aff[:3, :3], axis=0), HARD["spacing"])
        tilt = np.degrees(np.arctan2(aff[2, 1], aff[1, 1]))
        assert 8.0 <= abs(tilt) <= 20.0 and aff[0, 1] == aff[0, 2] == 0.0
    assert not np.array_equal(make_phantom(0, family="hard")[1], make_phantom(1, family="hard")[1])
    with pytest.raises(ValueError, match="family"):
        make_phantom(0, family="medium")


def _slice_centroid_slope(lab: np.ndarray, spacing) -> float:
    """Least-squares slope of the gland's per-slice A-P centroid (mm) against S-I (mm)."""
    zs = [k for k in range(lab.shape[2]) if (lab[..., k] > 0).any()]
    ys = [np.nonzero(lab[..., k] > 0)[1].mean() * spacing[1] for k in zs]
    return float(np.polyfit(np.asarray(zs) * spacing[2], ys, 1)[0])


def test_hard_oblique_tilts_the_anatomy_in_the_voxels_as_the_affine_says() -> None:
    """The same patient scanned axially and with +-15-degree oblique slices: the gland sits at
    the same place in world coordinates, but lies tilted in the oblique scans' voxel grids
    (its per-slice A-P centre drifts along S-I, one way or the other with the tilt's sign)."""
    spacing = HARD["spacing"]
    worlds, slopes = {}, {}
    for tilt in (-15.0, 0.0, 15.0):
        _, lab, aff = make_phantom(4, family="hard", oblique_deg=tilt)
        ijk = np.stack(np.nonzero(lab > 0))
        worlds[tilt] = (aff[:3, :3] @ ijk + aff[:3, 3:]).mean(axis=1)
        slopes[tilt] = _slice_centroid_slope(lab, spacing)
    for tilt in (-15.0, 15.0):
        # mm; S-I is sampled every 3 mm (slab), so the S-I centroid of the voxels moves more
        np.testing.assert_allclose(worlds[tilt][:2], worlds[0.0][:2], atol=1.0)
        assert abs(worlds[tilt][2] - worlds[0.0][2]) < 2.0
    # the centre of an ellipsoid's cross-sections drifts less than its tilted long axis
    # (tan 15 deg = 0.27), here about 0.13-0.15 mm per mm; upright: about 0
    assert abs(slopes[0.0]) < 0.04
    assert slopes[15.0] > 0.08 and slopes[-15.0] < -0.08


def test_hard_noise_and_bias_are_stronger() -> None:
    """Noise and bias field at the levels of :data:`HARD` (measured by switching each off on
    the same seed: only the level changes, not the random draws)."""
    for family, noise, bias in (("easy", 0.03, 0.15), ("hard", HARD["noise"], HARD["bias"])):
        clean, lab, _ = make_phantom(2, family=family, noise=0.0, bias=0.0)
        noisy, _, _ = make_phantom(2, family=family, bias=0.0)
        biased, _, _ = make_phantom(2, family=family, noise=0.0)
        pz = lab == 1  # bright: Rician noise there is nearly Gaussian
        assert (noisy - clean)[pz].std() == pytest.approx(1000 * noise, rel=0.1)
        lit = clean > 100
        assert np.log(biased[lit] / clean[lit]).std() == pytest.approx(bias, rel=0.1)
    assert HARD["noise"] >= 2 * 0.03 and HARD["bias"] >= 2 * 0.15


def test_hard_partial_volume_across_thick_slices() -> None:
    """Each 3 mm slice of a hard phantom averages 1 mm sub-slices: background voxels just above
    or below the gland (not beside it in-plane) are pulled towards gland intensity, much more
    than in the easy family, where slices are sampled at their centres."""

    def excess(family: str, seed: int) -> float:
        t2, lab, _ = make_phantom(seed, family=family, noise=0.0, bias=0.0)
        g = lab > 0
        near_z = np.zeros_like(g)
        near_z[..., :-1] |= g[..., 1:]
        near_z[..., 1:] |= g[..., :-1]
        beside = g.copy()
        for axis in (0, 1):
            for shift in (1, -1):
                beside |= np.roll(g, shift, axis=axis)
        tip = near_z & ~beside
        return float(t2[tip].mean() - t2[~g & ~tip].mean())

    easy = np.mean([excess("easy", s) for s in range(3)])
    hard = np.mean([excess("hard", s) for s in range(3)])
    assert hard > 2 * max(easy, 1.0) and hard > 20.0

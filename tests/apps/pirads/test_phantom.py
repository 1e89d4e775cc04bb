"""Tests of pirads.phantom: synthetic T2 prostate volumes with zone labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medcl.io.nifti import axial_check, read_labels, read_volume
from medcl.pirads.phantom import ZONES, make_phantom, write_phantoms

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

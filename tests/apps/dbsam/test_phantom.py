"""Tests of dbsam.phantom: synthetic CT/MR volumes with two organ labels."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medcl.dbsam.phantom import LABELS, SPACING_MM, phantom_affine, phantom_volume, write_phantoms
from medcl.dbsam.preprocess import normalize_intensity
from medcl.io.errors import ConfigError
from medcl.io.nifti import read_labels, read_volume

SHAPE = (64, 56, 16)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return write_phantoms(tmp_path_factory.mktemp("ph"), n=3, seed=1, shape=SHAPE)


def test_files_labels_and_geometry(written: tuple[Path, Path]) -> None:
    images, labels = written
    names = sorted(p.name for p in images.iterdir())
    assert names == ["case_000.nii.gz", "case_001.nii.gz", "case_002.nii.gz"]
    assert sorted(p.name for p in labels.iterdir()) == names
    for name in names:
        img = read_volume(images / name)
        lab = read_labels(labels / name, allowed=set(LABELS), like=img)
        assert img.shape == SHAPE and lab.data.dtype == np.uint8
        assert set(np.unique(lab.data)) == {0, 1, 2}
        assert nib.load(images / name).get_data_dtype() == np.float32
        assert nib.aff2axcodes(img.affine) == ("L", "P", "S")  # stored like LPS, not RAS
        np.testing.assert_allclose(img.spacing, SPACING_MM, rtol=1e-6)
        for code in LABELS:
            zs = np.flatnonzero((lab.data == code).any(axis=(0, 1)))
            assert zs.size >= 2 and zs.size < SHAPE[2]  # present, but not in every slice
            np.testing.assert_array_equal(zs, np.arange(zs[0], zs[-1] + 1))  # contiguous
            assert zs[0] > 0 and zs[-1] < SHAPE[2] - 1


def test_reproducible_by_seed(written: tuple[Path, Path], tmp_path: Path) -> None:
    images, labels = write_phantoms(tmp_path, n=2, seed=1, shape=SHAPE)
    for name in ("case_000.nii.gz", "case_001.nii.gz"):
        np.testing.assert_array_equal(
            read_volume(images / name).data, read_volume(written[0] / name).data
        )
        np.testing.assert_array_equal(
            read_labels(labels / name).data, read_labels(written[1] / name).data
        )
    a = phantom_volume(np.random.default_rng(5), SHAPE)
    b = phantom_volume(np.random.default_rng(5), SHAPE)
    c = phantom_volume(np.random.default_rng(6), SHAPE)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


@pytest.mark.parametrize("seed", range(4))
def test_ct_contrast_visible_but_not_trivial(seed: int) -> None:
    img, lab = phantom_volume(np.random.default_rng(seed), (96, 96, 24), "ct")
    assert img.dtype == np.float32 and lab.dtype == np.uint8
    assert img.min() >= -1024 and np.median(img[0]) < -900  # air around the body
    med = {k: float(np.median(img[lab == k])) for k in (1, 2)}
    assert 30 < med[1] < 100 and 100 < med[2] < 200 and med[2] > med[1] + 40
    win = normalize_intensity(img, "ct")  # MedSAM's 40/400 window shows the organs
    w1, w2 = np.median(win[lab == 1]), np.median(win[lab == 2])
    assert 0.4 < w1 < 0.7 and w2 > w1 + 0.1 and w2 < 0.95
    # No single HU threshold isolates organ 1 from the body tissue around it.
    body = (img > -500) & (lab == 0)
    thr = med[1] - 20
    assert (img[body] > thr).mean() > 0.01


def test_mr_positive_and_ordered() -> None:
    img, lab = phantom_volume(np.random.default_rng(3), SHAPE, "mr")
    assert img.min() >= 0 and np.isfinite(img).all()
    means = [float(img[lab == k].mean()) for k in (0, 1, 2)]
    assert means[0] < means[1] < means[2]


def test_affine_and_errors(tmp_path: Path) -> None:
    aff = phantom_affine(SHAPE)
    np.testing.assert_allclose(np.abs(np.diag(aff)[:3]), SPACING_MM)
    centre = aff @ np.array([(SHAPE[0] - 1) / 2, (SHAPE[1] - 1) / 2, (SHAPE[2] - 1) / 2, 1])
    np.testing.assert_allclose(centre[:3], 0.0, atol=1e-9)
    with pytest.raises(ConfigError, match="ct, mr"):
        phantom_volume(np.random.default_rng(0), SHAPE, "pet")


@pytest.mark.parametrize("args, words", [(["--n", "0"], "at least 1"),
                                         (["--modality", "pet"], "modality")])
def test_cli_bad_options_write_nothing(tmp_path: Path, medcl_cli, args, words) -> None:
    out = tmp_path / "ph"
    code, _, err = medcl_cli(["dbsam", "phantom", "--out", out, *args])
    assert code == 2 and words in err and "Traceback" not in err, err
    assert not out.exists()


def test_cli_refuses_an_out_holding_cases(tmp_path: Path, medcl_cli) -> None:
    out = tmp_path / "ph"
    write_phantoms(out, n=2, seed=0, shape=(32, 32, 8))
    before = {p: p.read_bytes() for p in out.rglob("*.nii.gz")}
    code, _, err = medcl_cli(["dbsam", "phantom", "--out", out, "--n", "1", "--seed", "3"])
    assert code == 2 and str(out) in err and "empty folder" in err, err
    assert {p: p.read_bytes() for p in out.rglob("*.nii.gz")} == before

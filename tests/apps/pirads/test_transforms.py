"""Tests of pirads.transforms: oblique-geometry round trip, intensity scaling, save_like."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medcl.io import InputFileError
from medcl.pirads.transforms import CROP, invert_to_input, preprocess, save_like

SHAPE = (40, 44, 12)


def _oblique_affine() -> np.ndarray:
    """Rotated (25 deg about z, 10 deg about x), x-flipped, anisotropic 0.6 x 0.6 x 2.5 mm."""
    a, b = np.deg2rad(25.0), np.deg2rad(10.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([-0.6, 0.6, 2.5])
    aff[:3, 3] = [10.0, -20.0, 5.0]
    return aff


@pytest.fixture
def case(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 5, size=(5, 4, 3))
    label = np.kron(blocks, np.ones((8, 11, 4), dtype=int)).astype(np.uint8)
    assert label.shape == SHAPE
    image = rng.normal(100.0, 20.0, size=SHAPE).astype(np.float32)
    image[0, 0, 0] = 1e5  # an outlier that the percentile clip must remove
    aff = _oblique_affine()
    img_path, lab_path = tmp_path / "t2.nii.gz", tmp_path / "zones.nii.gz"
    nib.save(nib.Nifti1Image(image, aff), img_path)
    nib.save(nib.Nifti1Image(label, aff), lab_path)
    return img_path, lab_path, label


def test_output_shape_and_intensity(case):
    img_path, lab_path, _ = case
    data = preprocess(img_path, lab_path)
    assert tuple(data["image"].shape) == (1, *CROP)
    assert tuple(data["label"].shape) == (1, *CROP)
    x = data["image"].numpy()
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() == pytest.approx(1.0)
    # the outlier was clipped: the tissue is spread over [0, 1], not squashed towards 0
    assert np.median(x[x > 0]) > 0.3
    assert set(np.unique(data["label"].numpy())) <= {0, 1, 2, 3, 4}
    # resampled to the target spacing in RAS
    spacing = np.linalg.norm(data["image"].affine[:3, :3].numpy(), axis=0)
    np.testing.assert_allclose(spacing, (0.5, 0.5, 3.0), atol=1e-4)


def test_custom_crop_shape(case):
    img_path, _, _ = case
    data = preprocess(img_path, crop=(32, 24, 8), spacing=(1.0, 1.0, 3.0))
    assert tuple(data["image"].shape) == (1, 32, 24, 8)


def test_label_round_trip_oblique(case):
    img_path, lab_path, label = case
    data = preprocess(img_path, lab_path)
    back = invert_to_input(data["label"], data)
    assert back.shape == SHAPE
    assert (back == label).mean() > 0.95
    # a prediction that ignores the geometry (flipped) must not pass the same check
    flipped = invert_to_input(torch.flip(data["label"], dims=(1,)), data)
    assert (flipped == label).mean() < 0.8


def test_scores_round_trip_argmax_after(case):
    img_path, lab_path, label = case
    data = preprocess(img_path, lab_path)
    lab = data["label"][0].long()
    scores = torch.nn.functional.one_hot(lab, 5).permute(3, 0, 1, 2).float()
    back = invert_to_input(scores, data, data["transforms"])
    assert back.shape == SHAPE
    assert (back == label).mean() > 0.95


def test_invert_rejects_wrong_shape(case):
    img_path, _, _ = case
    data = preprocess(img_path)
    with pytest.raises(ValueError, match="pred must have shape"):
        invert_to_input(torch.zeros(1, 10, 10, 10), data)


def test_missing_and_mismatched_files(tmp_path, case):
    img_path, _, _ = case
    with pytest.raises(InputFileError, match="nope.nii.gz"):
        preprocess(tmp_path / "nope.nii.gz")
    other = tmp_path / "other.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)), other)
    with pytest.raises(InputFileError, match="differs from image shape"):
        preprocess(img_path, other)


def test_save_like_keeps_geometry(case, tmp_path):
    img_path, lab_path, label = case
    ref = nib.load(img_path)
    ref.header["descrip"] = b"medcl ref"
    ref_path = tmp_path / "ref.nii.gz"
    ref.header.set_qform(ref.affine, code=1)
    ref.header.set_sform(ref.affine, code=2)
    nib.save(ref, ref_path)
    out = save_like(label.astype(np.int64), ref_path, tmp_path / "sub" / "pred.nii.gz")
    assert out == tmp_path / "sub" / "pred.nii.gz"
    got, want = nib.load(out), nib.load(ref_path)
    np.testing.assert_allclose(got.affine, want.affine, atol=1e-6)
    assert int(got.header["qform_code"]) == 1 and int(got.header["sform_code"]) == 2
    assert got.header["descrip"].tobytes().startswith(b"medcl ref")
    np.testing.assert_allclose(got.header.get_zooms(), want.header.get_zooms())
    np.testing.assert_array_equal(np.asarray(got.dataobj), label)
    assert got.get_data_dtype() == np.uint8
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left
    with pytest.raises(InputFileError, match="does not match the reference shape"):
        save_like(np.zeros((3, 3, 3)), ref_path, tmp_path / "bad.nii.gz")

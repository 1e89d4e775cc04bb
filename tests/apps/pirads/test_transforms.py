"""Tests of pirads.transforms: oblique-geometry round trip, intensity scaling, reading once.

Writing with the input's geometry is :func:`medcl.io.nifti.write_volume`'s job (tested in
tests/io/test_nifti.py and end to end in test_infer.py)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from medcl.io import InputFileError
from medcl.io.nifti import read_labels, read_volume
from medcl.pirads.transforms import CROP, invert_to_input, preprocess

SHAPE = (40, 44, 12)


def _oblique_affine() -> np.ndarray:
    """Rotated (25 deg about z, 10 deg about x), x-flipped, anisotropic 0.6 x 0.6 x 2.5 mm.

    Kept here rather than ``helpers.oblique_lps_affine``: the round-trip bounds below (> 95 %
    of voxels back in place) depend on these numbers — thick slices along the stored z axis,
    which the 3 mm target spacing keeps, and blocks of 8 x 11 x 4 voxels. The helper's
    permuted geometry is used end to end in test_infer.py.
    """
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
    with pytest.raises(InputFileError, match=r"other\.nii\.gz: geometry differs from "
                       r".*t2\.nii\.gz \(shape \(5, 5, 5\) vs \(40, 44, 12\)\)"):
        preprocess(img_path, other)
    with pytest.raises(ValueError, match="differs from image shape"):
        preprocess(read_volume(img_path), read_labels(other))


def test_volumes_read_once_give_the_same_case(case, monkeypatch):
    """Volumes already read (as training and evaluation pass them) preprocess exactly like the
    files, and preprocessing them reads nothing from disk."""
    img_path, lab_path, label = case
    from_files = preprocess(img_path, lab_path)
    vol = read_volume(img_path)
    lab = read_labels(lab_path, like=vol)

    def no_read(*args, **kwargs):
        raise AssertionError("preprocess read a file again")

    monkeypatch.setattr(nib, "load", no_read)
    data = preprocess(vol, lab)
    for key in ("image", "label"):
        torch.testing.assert_close(data[key].as_tensor(), from_files[key].as_tensor(),
                                   rtol=0, atol=0)
        torch.testing.assert_close(data[key].affine, from_files[key].affine, rtol=0, atol=0)
    np.testing.assert_array_equal(invert_to_input(data["label"], data),
                                  invert_to_input(from_files["label"], from_files))
    with pytest.raises(TypeError, match="already read"):
        preprocess(vol, channel=0)


def test_ras_view_and_affine_as_nibabel_canonical(case):
    """MONAI receives the RAS-ordered voxels with the RAS affine (what ``Orientationd`` gave)."""
    img_path, _, _ = case
    data = preprocess(img_path, crop=None, spacing=(0.6, 0.6, 2.5))  # no resampling needed
    ras = nib.as_closest_canonical(nib.load(img_path))
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    np.testing.assert_allclose(data["image"].affine.numpy(), ras.affine, atol=1e-5)
    assert tuple(data["image"].shape[1:]) == ras.shape


# ---------------------------------------------------------------- training crops and augmentation


def _blob(shape=(48, 48, 12), centre=(14, 30, 6), radius_mm=7.0) -> np.ndarray:
    """A ball of ``radius_mm`` at 0.5 x 0.5 x 3 mm around voxel ``centre`` (bool)."""
    axes = [(np.arange(n) - c) * s for n, c, s in zip(shape, centre, (0.5, 0.5, 3.0),
                                                       strict=True)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    return x**2 + y**2 + z**2 <= radius_mm**2


def _centroid(mask) -> np.ndarray:
    return np.argwhere(np.asarray(mask)).mean(axis=0)


def test_augmentation_moves_labels_with_the_image_and_never_flips() -> None:
    """The spatial draws move image, zones and distance together; labels keep their codes
    and dtype; a blob on the right stays on the right (no left-right flip)."""
    from medcl.pirads.losses import signed_distance
    from medcl.pirads.transforms import augment_transforms

    blob = _blob()
    labels = np.where(blob, 2, 0).astype(np.int64)
    labels[blob & (np.arange(48)[:, None, None] < 14)] = 1  # two zones in the blob
    labels[0, 0, 0] = -1  # an "unlabelled" code survives as a code, not as a blend
    image = torch.from_numpy(np.where(blob, 0.9, 0.1).astype(np.float32))[None]
    label = torch.from_numpy(labels)[None]
    sdf = torch.from_numpy(signed_distance(labels))[None]
    aug = augment_transforms()
    assert not any("flip" in type(t).__name__.lower() for t in aug.transforms)
    moved = 0
    for seed in range(12):
        aug.set_random_state(seed)
        out = aug({"image": image, "label": label, "sdf": sdf})
        img, lab, dist = (np.asarray(out[k])[0] for k in ("image", "label", "sdf"))
        assert out["label"].dtype == label.dtype
        assert set(np.unique(lab)) <= {-1, 0, 1, 2}
        bright, gland = img > 0.5, lab > 0
        dice = 2 * (bright & gland).sum() / (bright.sum() + gland.sum())
        assert dice > 0.8, (seed, dice)
        np.testing.assert_allclose(_centroid(bright), _centroid(gland), atol=1.5)
        inside = dist < 0
        assert 2 * (inside & gland).sum() / (inside.sum() + gland.sum()) > 0.85
        assert _centroid(gland)[0] < 24  # still on the right half (RAS: low x = right)
        moved += float(np.abs(_centroid(gland) - _centroid(blob)).max()) > 0.5
    assert moved >= 6  # the spatial transform does act


def test_physical_similarity_keeps_the_distance_exact() -> None:
    """A pure scaling by s: the warped signed distance (divided by s) equals the distance of
    the warped labels (to within the voxel grid), so a cached target stays valid."""
    from medcl.pirads.losses import signed_distance
    from medcl.pirads.transforms import RandPhysicalSpatiald

    blob = _blob(centre=(24, 24, 6), radius_mm=6.0)
    sdf = torch.from_numpy(signed_distance(blob.astype(np.int64)))[None]
    t = RandPhysicalSpatiald(("label", "sdf"), mode=("nearest", "bilinear"),
                             distance_keys=("sdf",), rotate_deg=0.0, scale=(0.9, 0.9),
                             translate_mm=(0.0, 0.0, 0.0), elastic_mm=0.0)
    out = t({"label": torch.from_numpy(blob.astype(np.int64))[None], "sdf": sdf})
    assert t.scale == pytest.approx(0.9)
    lab = np.asarray(out["label"])[0]
    assert lab.sum() > blob.sum() * 1.2  # scale 0.9 samples closer: the ball grows by 1/0.9
    ref = signed_distance(lab)
    band = np.abs(ref) < 6  # near the surface, where the loss cares
    err = np.abs(np.asarray(out["sdf"])[0] - ref)[band]
    assert err.mean() < 0.35 and err.max() < 1.6, (err.mean(), err.max())


def test_gland_centre_and_crop_around_an_off_centre_gland() -> None:
    from medcl.pirads.transforms import crop_around, gland_centre

    blob = _blob(shape=(80, 60, 16), centre=(60, 12, 10))
    vol = torch.from_numpy(blob.astype(np.int64))[None]
    c = gland_centre(vol)
    np.testing.assert_allclose(c, (60, 12, 10), atol=1)
    box = crop_around(vol, c, (40, 40, 8))
    assert box.shape == (1, 40, 40, 8) and int(box.sum()) == int(blob.sum())
    centre_box = crop_around(vol, (40, 30, 8), (40, 40, 8))  # the field of view's centre
    assert int(centre_box.sum()) < 0.5 * blob.sum()
    assert gland_centre(torch.zeros(1, 10, 12, 6)) == (5, 6, 3)

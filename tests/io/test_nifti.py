"""Tests of medcl.io.nifti: reading, checking and writing NIfTI volumes."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from helpers import assert_same_geometry, oblique_lps_affine, write_nifti
from medcl.io import ConfigError, InputFileError
from medcl.io.nifti import (
    NIFTI_SUFFIXES,
    Volume,
    axial_check,
    read_labels,
    read_volume,
    strip_suffix,
    write_volume,
)

SPACING = (0.5, 0.6, 3.0)


def _affine(spacing=SPACING, tilt_deg: float = 0.0) -> np.ndarray:
    a = math.radians(tilt_deg)
    rot = np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]]
    )
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(spacing)
    aff[:3, 3] = [-10.0, 5.0, 20.0]
    return aff


def _save(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    img = nib.Nifti1Image(data, _affine() if affine is None else affine)
    nib.save(img, path)
    return path


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return _save(tmp_path / "t2.nii.gz", rng.random((8, 7, 5)).astype(np.float32))


def test_round_trip_keeps_data_affine_spacing_dtype(image: Path, tmp_path: Path) -> None:
    vol = read_volume(image)
    assert vol.data.shape == (8, 7, 5) and vol.data.dtype == np.float32
    assert vol.spacing == pytest.approx(SPACING)
    np.testing.assert_allclose(vol.affine, _affine(), atol=1e-5)

    out = write_volume(tmp_path / "copy.nii.gz", vol.data * 2, like=vol)
    back = read_volume(out)
    np.testing.assert_allclose(back.data, vol.data * 2, rtol=1e-6)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)
    assert back.spacing == pytest.approx(SPACING)

    labels = (vol.data > 0.5).astype(np.int64) * 3
    lab_path = write_volume(tmp_path / "lab.nii.gz", labels, like=vol, dtype=np.uint8)
    assert nib.load(lab_path).header.get_data_dtype() == np.uint8
    lab16 = write_volume(tmp_path / "lab16.nii", labels, like=vol, dtype=np.int16)
    assert nib.load(lab16).header.get_data_dtype() == np.int16
    lab = read_labels(lab_path, allowed={3}, like=vol)
    np.testing.assert_array_equal(lab.data, labels)
    assert lab.data.dtype == np.uint8
    # no temporary files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "copy.nii.gz",
        "lab.nii.gz",
        "lab16.nii",
        "t2.nii.gz",
    ]


def test_four_d_needs_channel(tmp_path: Path) -> None:
    data = np.stack([np.full((6, 6, 4), c, np.float32) for c in range(3)], axis=-1)
    path = _save(tmp_path / "mp.nii.gz", data)
    with pytest.raises(InputFileError, match=r"--channel N with 0 <= N < 3") as err:
        read_volume(path)
    assert "mp.nii.gz" in str(err.value)
    vol = read_volume(path, channel=2)
    assert vol.data.shape == (6, 6, 4) and np.all(vol.data == 2)
    assert vol.spacing == pytest.approx(SPACING)
    with pytest.raises(InputFileError, match="out of range"):
        read_volume(path, channel=3)


def test_nan_values(tmp_path: Path) -> None:
    data = np.zeros((4, 4, 4), np.float32)
    data[1, 2, 3] = np.nan
    path = _save(tmp_path / "nan.nii.gz", data)
    with pytest.raises(InputFileError, match=r"nan\.nii\.gz: contains 1 NaN"):
        read_volume(path)


def test_corrupt_missing_and_wrong_suffix(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.nii.gz"
    bad.write_bytes(b"this is not a nifti file at all" * 20)
    with pytest.raises(InputFileError, match=r"garbage\.nii\.gz: cannot be read as NIfTI"):
        read_volume(bad)
    truncated = tmp_path / "trunc.nii.gz"
    full = gzip.compress(nib.Nifti1Image(np.ones((9, 9, 9), np.float32), np.eye(4)).to_bytes())
    truncated.write_bytes(full[: len(full) // 2])
    with pytest.raises(InputFileError, match="corrupt"):
        read_volume(truncated)
    with pytest.raises(InputFileError, match=r"absent\.nii\.gz: file not found"):
        read_volume(tmp_path / "absent.nii.gz")
    other = tmp_path / "scan.mha"
    other.write_bytes(b"x")
    with pytest.raises(InputFileError, match=r"scan\.mha: not a NIfTI file"):
        read_volume(other)


def test_two_d_is_refused(tmp_path: Path) -> None:
    path = _save(tmp_path / "slice.nii", np.zeros((5, 5), np.float32))
    with pytest.raises(InputFileError, match="3-D volume is needed"):
        read_volume(path)


def test_labels_unknown_codes_and_non_integer(tmp_path: Path) -> None:
    lab = np.zeros((5, 5, 3), np.uint8)
    lab[0, 0, 0], lab[1, 1, 1], lab[2, 2, 2] = 1, 7, 9
    path = _save(tmp_path / "lab.nii.gz", lab)
    with pytest.raises(InputFileError, match=r"lab\.nii\.gz: has unknown label code\(s\) \[7, 9\]"):
        read_labels(path, allowed={1, 2, 3, 4})
    assert read_labels(path).data.max() == 9
    frac = _save(tmp_path / "img.nii.gz", np.full((5, 5, 3), 0.5, np.float32))
    with pytest.raises(InputFileError, match="non-integer"):
        read_labels(frac)


def test_labels_geometry_mismatch(image: Path, tmp_path: Path) -> None:
    vol = read_volume(image)
    shifted = _affine()
    shifted[0, 3] += 1.0
    moved = _save(tmp_path / "moved.nii.gz", np.zeros((8, 7, 5), np.uint8), shifted)
    with pytest.raises(InputFileError, match=r"geometry differs from .*t2\.nii\.gz"):
        read_labels(moved, like=vol)
    small = _save(tmp_path / "small.nii.gz", np.zeros((8, 7, 4), np.uint8))
    with pytest.raises(InputFileError, match="geometry differs"):
        read_labels(small, like=vol)
    same = _save(tmp_path / "same.nii.gz", np.zeros((8, 7, 5), np.uint8))
    assert read_labels(same, like=vol).data.shape == (8, 7, 5)


def test_write_refuses_input_and_bad_suffix(image: Path, tmp_path: Path) -> None:
    vol = read_volume(image)
    before = image.read_bytes()
    with pytest.raises(InputFileError, match="overwrite the input"):
        write_volume(image, np.zeros(vol.data.shape), like=vol)
    assert image.read_bytes() == before
    with pytest.raises(ConfigError, match="NIfTI"):
        write_volume(tmp_path / "out.png", vol.data, like=vol)
    with pytest.raises(ValueError, match="does not match"):
        write_volume(tmp_path / "out.nii.gz", vol.data[:, :, :2], like=vol)


def test_axial_check() -> None:
    data = np.zeros((8, 8, 4), np.float32)
    assert axial_check(Volume.from_array(data, _affine())) is None
    assert axial_check(Volume.from_array(data, _affine(tilt_deg=10))) is None
    warning = axial_check(Volume.from_array(data, _affine(tilt_deg=60)))
    assert warning is not None and "axial" in warning and "60 degrees" in warning
    # thick axis lying along R-L: a sagittal acquisition
    sag = np.diag([3.0, 0.5, 0.5, 1.0])
    assert axial_check(Volume.from_array(data, sag)) is not None


def test_canonical_round_trip_and_orientation():
    from nibabel.orientations import aff2axcodes

    from medcl.io.nifti import Canonical

    rng = np.random.default_rng(0)
    data = rng.normal(size=(5, 6, 7)).astype(np.float32)
    vol = Volume.from_array(data, oblique_lps_affine())
    can = Canonical.of(vol)
    ras = can.forward(vol.data)
    # the same result as nibabel's own canonical reorientation
    ref = nib.as_closest_canonical(nib.Nifti1Image(data, vol.affine))
    assert aff2axcodes(ref.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(ras, np.asarray(ref.dataobj))
    assert can.ras_shape == ras.shape
    np.testing.assert_allclose(can.zooms, ref.header.get_zooms()[:3], rtol=1e-5)
    np.testing.assert_array_equal(can.backward(ras), data)
    # the RAS view's affine is nibabel's, and maps each voxel to the same world point
    np.testing.assert_allclose(can.forward_affine(vol.affine), ref.affine, atol=1e-9)
    ijk = np.array([4, 5, 6, 1.0])
    np.testing.assert_allclose(can.forward_affine(vol.affine) @ [*can.index_forward(ijk[:3]), 1],
                               vol.affine @ ijk, atol=1e-9)
    # a stored voxel index lands on the same value after reorientation
    for ijk in [(0, 0, 0), (4, 5, 6), (1, 3, 2)]:
        assert ras[tuple(can.index_forward(ijk))] == data[ijk]


def test_canonical_write_back_keeps_input_geometry(tmp_path):
    from medcl.io.nifti import Canonical

    aff = oblique_lps_affine()
    src = _save(tmp_path / "in.nii.gz", np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7),
                aff)
    vol = read_volume(src)
    can = Canonical.of(vol)
    mask_ras = (can.forward(vol.data) > 100).astype(np.uint8)
    out = write_volume(tmp_path / "out.nii.gz", can.backward(mask_ras), like=vol)
    img = nib.load(out)
    assert img.shape == vol.shape
    np.testing.assert_allclose(img.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), (vol.data > 100).astype(np.uint8))


def test_suffixes_one_list_longest_match_first() -> None:
    assert NIFTI_SUFFIXES[0] == ".nii.gz" and set(NIFTI_SUFFIXES) == {".nii.gz", ".nii"}
    assert strip_suffix("case_001.nii.gz") == "case_001"
    assert strip_suffix("Case.NII.GZ") == "Case" and strip_suffix("a.b.nii") == "a.b"
    assert strip_suffix("scan.mha") is None and strip_suffix("x.nii.gz.bak") is None
    # the order of a list does not matter: the longest ending wins
    assert strip_suffix("a.nii.gz", (".gz", ".nii.gz")) == "a"
    from medcl.io import cases

    assert cases.NIFTI_SUFFIXES is NIFTI_SUFFIXES


@pytest.mark.parametrize("qform_code, sform_code, shift", [(1, 2, 0.0), (1, 4, 3.0), (0, 1, 0.0),
                                                            (2, 0, 0.0), (0, 0, 0.0)])
def test_write_keeps_header_forms_and_resets_scaling(tmp_path: Path, qform_code: int,
                                                     sform_code: int, shift: float) -> None:
    """A label map written like an oblique scanner file keeps its shape, affine, qform and sform
    (each with its code, even when they differ), zooms and description; the dtype asked for; no
    intensity scaling; no temporary file left."""
    aff = oblique_lps_affine()
    rng = np.random.default_rng(0)
    img = nib.Nifti1Image((rng.random((6, 7, 5)) * 100).astype(np.int16), aff)
    qform = aff.copy()
    qform[0, 3] += shift  # a qform that differs from the sform
    img.set_qform(qform, code=qform_code)
    img.set_sform(aff, code=sform_code)
    img.header["descrip"] = b"medcl ref"
    img.header.set_slope_inter(2.0, -1.0)
    src = tmp_path / "ref.nii.gz"
    nib.save(img, src)
    vol = read_volume(src)
    labels = (vol.data > vol.data.mean()).astype(np.int64) * 4
    out = write_volume(tmp_path / "sub" / "pred.nii.gz", labels, like=vol, dtype=np.uint8)
    assert out == tmp_path / "sub" / "pred.nii.gz"
    got, want = nib.load(out), nib.load(src)
    assert_same_geometry(got, want)
    assert got.header["descrip"].tobytes().startswith(b"medcl ref")
    np.testing.assert_allclose(got.header.get_zooms(), want.header.get_zooms())
    assert got.get_data_dtype() == np.uint8 and got.header.get_slope_inter() == (None, None)
    np.testing.assert_array_equal(np.asarray(got.dataobj), labels)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_write_a_label_map_on_a_4d_inputs_grid(tmp_path: Path) -> None:
    """The channel of a 4-D file is read as a 3-D volume; what is written like it is 3-D on the
    file's spatial grid (shape, affine, qform/sform codes)."""
    data = np.random.default_rng(1).random((6, 7, 5, 2)).astype(np.float32)
    src = write_nifti(tmp_path / "mp.nii.gz", data, oblique_lps_affine(), qform_code=1,
                      sform_code=2)
    vol = read_volume(src, channel=1)
    out = write_volume(tmp_path / "mask.nii.gz", vol.data > 0.5, like=vol)
    got, want = nib.load(out), nib.load(src)
    assert got.shape == want.shape[:3] and got.get_data_dtype() == np.uint8
    np.testing.assert_allclose(got.affine, want.affine, atol=1e-6)
    assert (int(got.header["qform_code"]), int(got.header["sform_code"])) == (1, 2)
    np.testing.assert_allclose(got.header.get_zooms(), want.header.get_zooms()[:3])
    np.testing.assert_array_equal(np.asarray(got.dataobj), data[..., 1] > 0.5)

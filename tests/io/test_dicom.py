"""DICOM series in (SimpleITK) and SEG out (highdicom): round trips and refused folders."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest
from scipy.spatial.transform import Rotation

from medcl.io.dicom import is_dicom_folder, read_dicom_series, write_seg, write_series
from medcl.io.errors import ConfigError, InputFileError
from medcl.io.nifti import Canonical, Volume, read_volume, write_volume


def _oblique(spacing=(0.8, 0.9, 2.5), angles=(10, -20, 30)) -> np.ndarray:
    rot = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag(spacing)
    aff[:3, 3] = [10.0, -20.0, 30.0]
    return aff


@pytest.fixture
def volume() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.integers(-100, 300, size=(12, 10, 7)).astype(float) * 0.5, _oblique()


def test_series_round_trip_keeps_voxels_and_oblique_geometry(tmp_path, volume):
    data, aff = volume
    nii = tmp_path / "scan.nii.gz"
    write_volume(nii, data.astype(np.float32), Volume.from_array(data.astype(np.float32), aff))
    src = read_volume(nii)
    files = write_series(tmp_path / "ser", src.data, src.affine, slope=0.5, intercept=-10.0)
    # shuffle the file names: the order must come from ImagePositionPatient, not from names
    for i, f in enumerate(files):
        f.rename(f.with_name(f"z{(i * 5) % len(files):03d}_{i}.dcm"))
    back = read_volume(tmp_path / "ser")
    assert back.shape == src.shape
    np.testing.assert_array_equal(back.data, src.data)  # rescale slope/intercept applied
    np.testing.assert_allclose(back.affine, src.affine, atol=1e-5)
    np.testing.assert_allclose(back.spacing, (0.8, 0.9, 2.5), atol=1e-5)
    # the same RAS path as NIfTI: the canonical views agree
    np.testing.assert_array_equal(Canonical.of(back).forward(back.data),
                                  Canonical.of(src).forward(src.data))
    assert back.source.series_uid and len(back.source.files) == 7


def test_geometry_against_hand_computed_positions(tmp_path, volume):
    """Independent reference: the world position of voxel (i, j, k) is IPP_k + i*dx*row_dir
    + j*dy*col_dir in LPS (PS3.3 C.7.6.2.1.1), read straight from the files with pydicom."""
    data, aff = volume
    write_series(tmp_path / "ser", data, aff)
    vol = read_dicom_series(tmp_path / "ser")
    for k, f in enumerate(vol.source.files):
        ds = pydicom.dcmread(f)
        iop = np.asarray(ds.ImageOrientationPatient, float)
        dy, dx = (float(v) for v in ds.PixelSpacing)
        i, j = 3, 5
        lps = np.asarray(ds.ImagePositionPatient, float) + i * dx * iop[:3] + j * dy * iop[3:]
        ras = vol.affine @ [i, j, k, 1]
        np.testing.assert_allclose(ras[:3], lps * [-1, -1, 1], atol=1e-4)
        # voxel (i, j) of slice k is pixel row j, column i of file k
        assert vol.data[i, j, k] == pytest.approx(float(ds.pixel_array[j, i]))


def test_seg_frames_reference_the_right_source_instances(tmp_path, volume):
    import highdicom as hd

    data, aff = volume
    write_series(tmp_path / "ser", data, aff, modality="CT")
    vol = read_dicom_series(tmp_path / "ser")
    mask = np.zeros(vol.shape, np.uint8)
    mask[3:6, 2:5, 2:4] = 1
    mask[7:9, 6:8, 4] = 2
    mask[0, 0, 6] = 2
    out = write_volume(tmp_path / "pred.dcm", mask, vol)
    seg = hd.seg.segread(out)
    assert seg.SeriesInstanceUID != vol.source.series_uid
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == vol.source.series_uid
    assert seg.number_of_segments == 2
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID
            for f in vol.source.files]
    frames = seg.pixel_array
    seen = set()
    for n, group in enumerate(seg.PerFrameFunctionalGroupsSequence):
        ref = group.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        k = uids.index(ref)
        label = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_array_equal(frames[n].astype(bool), (mask[:, :, k] == label).T)
        seen.add((k, label))
    assert {(2, 1), (3, 1), (4, 2), (6, 2)} <= seen


def test_seg_needs_a_dicom_input(tmp_path, volume):
    data, aff = volume
    with pytest.raises(ConfigError, match="DICOM SEG output needs a DICOM series"):
        write_seg(tmp_path / "x.dcm", data > 0, Volume.from_array(data, aff))
    assert not (tmp_path / "x.dcm").exists()


# -- refused folders -----------------------------------------------------------------------------
def _series(tmp_path, name="ser", **kw):
    data = np.arange(4 * 3 * 6, dtype=float).reshape(4, 3, 6)
    aff = kw.pop("affine", np.diag([1.0, 1.0, 2.0, 1.0]))
    return write_series(tmp_path / name, data, aff, **kw)


def test_two_series_need_a_choice(tmp_path):
    a = _series(tmp_path, "mix", description="T2 axial")
    b = _series(tmp_path / "other")
    for f in b:
        shutil.move(f, tmp_path / "mix" / f"b_{f.name}")
    with pytest.raises(InputFileError, match=r"holds 2 image series .*--series UID"):
        read_dicom_series(tmp_path / "mix")
    uid = pydicom.dcmread(a[0]).SeriesInstanceUID
    assert read_dicom_series(tmp_path / "mix", series=uid).source.series_uid == uid
    with pytest.raises(InputFileError, match="no image series 1.2.3"):
        read_dicom_series(tmp_path / "mix", series="1.2.3")


def test_missing_slices_refused(tmp_path):
    files = _series(tmp_path)
    files[2].unlink()
    with pytest.raises(InputFileError, match=r"1 missing slice\(s\)"):
        read_volume(tmp_path / "ser")


def test_uneven_spacing_refused(tmp_path):
    files = _series(tmp_path)
    ds = pydicom.dcmread(files[3])
    ds.ImagePositionPatient = [0, 0, 6.7]
    ds.save_as(files[3])
    with pytest.raises(InputFileError, match="uneven slice spacing"):
        read_dicom_series(tmp_path / "ser")


def test_gantry_tilt_refused(tmp_path):
    shear = np.diag([1.0, 1.0, 2.0, 1.0])
    shear[1, 2] = 0.3  # slices step sideways: positions leave the normal
    _series(tmp_path, affine=shear)
    with pytest.raises(InputFileError, match="gantry tilt"):
        read_dicom_series(tmp_path / "ser")
    _series(tmp_path, "tilt", gantry_tilt=12.0)
    with pytest.raises(InputFileError, match="gantry tilt 12 degrees"):
        read_dicom_series(tmp_path / "tilt")


@pytest.mark.parametrize(("sop", "what"), [
    ("1.2.840.10008.5.1.4.1.1.88.11", "Structured Report"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT Structure Set"),
])
def test_non_image_objects_refused(tmp_path, sop, what):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder = tmp_path / "sr"
    folder.mkdir()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID, ds.Modality = generate_uid(), "SR"
    pydicom.dcmwrite(folder / "report.dcm", ds, enforce_file_format=True)
    assert is_dicom_folder(folder)
    with pytest.raises(InputFileError, match=f"no DICOM image series: report.dcm is .*{what}"):
        read_volume(folder)


def test_empty_and_non_dicom_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="holds no DICOM files"):
        read_dicom_series(tmp_path / "empty")
    with pytest.raises(InputFileError, match="is a folder"):
        read_volume(tmp_path / "empty")  # not DICOM: the NIfTI reader's own message

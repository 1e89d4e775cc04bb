"""DICOM volumes: a series folder in (SimpleITK), a DICOM SEG out (highdicom).

Scanner output arrives as a folder of single-frame DICOM files, one per slice, possibly several
series side by side. :func:`read_dicom_series` checks the folder once with pydicom (headers
only) and refuses, with one line naming the folder and the fix:

- a folder without DICOM image files, or one holding only non-image objects (a Structured
  Report, an RT Structure Set, a Segmentation, a presentation state ...);
- two or more image series when no ``series`` UID was given (the series are listed);
- slices of different size or orientation, a tilted gantry (slice positions that do not move
  along the slice normal, or a non-zero ``GantryDetectorTilt``), missing slices (a gap that is a
  whole multiple of the usual spacing) and otherwise uneven slice spacing.

The pixels and the geometry are then read by SimpleITK's ``ImageSeriesReader`` from the files in
the order the slice positions give (``ImagePositionPatient`` projected on the slice normal, the
DICOM standard's way, PS3.3 C.7.6.2.1.1), which applies ``RescaleSlope``/``RescaleIntercept``
and builds origin, spacing and direction in LPS. The LPS frame is turned into the RAS+ affine
NIfTI uses (``diag(-1, -1, 1)``), so a DICOM series enters exactly the path a NIfTI file does:
the returned :class:`medcl.io.nifti.Volume` has data ``(X, Y, Z)`` = (column, row, slice) and a
voxel-to-RAS affine, and :class:`medcl.io.nifti.Canonical` reorients it as any NIfTI volume.

:func:`write_seg` writes a label map over such a volume as a DICOM Segmentation (highdicom,
binary segments, one per label) whose frames reference the source instances they lie on, so
3D Slicer or OHIF open it over the scan. :func:`write_series` writes a volume as a CT/MR series
with pydicom (used by the tests and demos to make a series from a NIfTI with any, e.g. oblique,
affine).

Departures: SimpleITK would read a folder of mixed series by itself (GDCM picks the first
series); here a mixed folder is refused instead, since picking silently is how a wrong scan
gets segmented. SimpleITK's own check of uneven spacing only warns; here it is an error.

Imports of pydicom, highdicom and SimpleITK happen inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import ConfigError, InputFileError

__all__ = [
    "DICOM_SUFFIXES",
    "SeriesInfo",
    "is_dicom_folder",
    "is_seg_name",
    "read_dicom_series",
    "write_seg",
    "write_series",
]

DICOM_SUFFIXES: tuple[str, ...] = (".dcm", ".dicom", ".ima")
"""File name endings of DICOM files; files without an ending are tried too (scanners often
write none)."""

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_POS_TOL_MM = 1e-2  # positions and spacings compared to 0.01 mm
_TILT_TOL = 1e-3  # |sin| of the angle between a slice step and the slice normal
_SPACING_RTOL = 1e-2  # slice gaps may differ by 1 % of the usual gap

# SOP classes that are not images (given as an image folder by mistake), with a name for the
# message. Any object without pixel data is refused too.
_NON_IMAGE = {
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT Structure Set (RTSTRUCT)",
    "1.2.840.10008.5.1.4.1.1.66.4": "a Segmentation (SEG)",
    "1.2.840.10008.5.1.4.1.1.11.1": "a presentation state",
    "1.2.840.10008.5.1.4.1.1.104.1": "an encapsulated PDF",
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT Plan",
    "1.2.840.10008.5.1.4.1.1.481.2": "an RT Dose",
    "1.2.840.10008.5.1.4.1.1.66": "a raw data object",
    "1.2.840.10008.5.1.4.1.1.66.1": "a spatial registration",
}
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."  # every Structured Report class


def is_seg_name(path: str | os.PathLike[str]) -> bool:
    """Whether an output path asks for DICOM (``*.dcm``)."""
    return Path(path).name.lower().endswith(".dcm")


def is_dicom_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding at least one file that starts like DICOM (the
    ``DICM`` preamble marker) or is named ``*.dcm`` -- what readers use to send a folder
    here."""
    p = Path(path)
    if not p.is_dir():
        return False
    return any(_looks_dicom(f) or f.name.lower().endswith(DICOM_SUFFIXES)
               for f in _files(p)[:50])


def _files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))


def _looks_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


@dataclass
class SeriesInfo:
    """The series a volume was read from: what :func:`write_seg` needs to reference it.

    Attributes
    ----------
    folder : pathlib.Path
        The folder given.
    series_uid : str
        ``SeriesInstanceUID``.
    files : list of pathlib.Path
        The slice files in volume order (slice ``k`` of the volume is ``files[k]``).
    description : str
        ``SeriesDescription`` (may be empty).
    modality : str
        ``Modality`` (CT, MR, ...).
    """

    folder: Path
    series_uid: str
    files: list[Path]
    description: str = ""
    modality: str = ""
    notes: list[str] = field(default_factory=list)


def _headers(folder: Path) -> list[tuple[Path, Any]]:
    import pydicom

    out = []
    for f in _files(folder):
        low = f.name.lower()
        if not (_looks_dicom(f) or low.endswith(DICOM_SUFFIXES)):
            continue
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises several types for broken files
            raise InputFileError(f"cannot be read as DICOM ({type(exc).__name__}: {exc})",
                                 path=f, fix="the file is corrupt; export the series again"
                                 ) from exc
        out.append((f, ds))
    return out


def _what(ds: Any) -> str | None:
    """Why ``ds`` is not an image slice, or ``None`` when it is one."""
    sop = str(getattr(ds, "SOPClassUID", ""))
    if sop in _NON_IMAGE:
        return _NON_IMAGE[sop]
    if sop.startswith(_SR_PREFIX):
        return "a Structured Report (SR)"
    if "Rows" not in ds or "ImagePositionPatient" not in ds or "ImageOrientationPatient" not in ds:
        return f"not an image with a position in space (SOP class {sop or 'unknown'})"
    if int(getattr(ds, "NumberOfFrames", 1) or 1) > 1:
        return "a multi-frame object (one file per slice is read here)"
    return None


def _choose_series(folder: Path, headers: list[tuple[Path, Any]], series: str | None
                   ) -> list[tuple[Path, Any]]:
    if not headers:
        raise InputFileError("holds no DICOM files", path=folder,
                             fix="pass the folder of one DICOM series (or a NIfTI file)")
    images = [(f, ds) for f, ds in headers if _what(ds) is None]
    if not images:
        f, ds = headers[0]
        raise InputFileError(f"holds no DICOM image series: {f.name} is {_what(ds)}",
                             path=folder, fix="pass the folder of the image series itself")
    by_uid: dict[str, list[tuple[Path, Any]]] = {}
    for f, ds in images:
        by_uid.setdefault(str(getattr(ds, "SeriesInstanceUID", "")), []).append((f, ds))
    if series is not None:
        if series not in by_uid:
            raise InputFileError(f"holds no image series {series}; it holds "
                                 f"{_list_series(by_uid)}", path=folder,
                                 fix="pass one of these UIDs to --series")
        return by_uid[series]
    if len(by_uid) > 1:
        raise InputFileError(f"holds {len(by_uid)} image series ({_list_series(by_uid)})",
                             path=folder, fix="choose one with --series UID (or move "
                             "the other series out of the folder)")
    return next(iter(by_uid.values()))


def _list_series(by_uid: Mapping[str, list[tuple[Path, Any]]]) -> str:
    parts = []
    for uid, items in by_uid.items():
        desc = str(getattr(items[0][1], "SeriesDescription", "") or "").strip()
        parts.append(f"{uid}{f' {desc!r}' if desc else ''}: {len(items)} file(s)")
    return "; ".join(parts)


def _sorted_slices(folder: Path, items: list[tuple[Path, Any]]) -> list[tuple[Path, Any]]:
    """The slices ordered along the normal; refuses what cannot be one regular volume."""
    if len(items) < 2:
        raise InputFileError(f"series has {len(items)} slice(s); a 3-D volume needs 2 or more",
                             path=folder, fix="pass the folder of a whole 3-D series")
    first = items[0][1]
    iop = np.asarray([float(v) for v in first.ImageOrientationPatient])
    size = (int(first.Rows), int(first.Columns))
    for f, ds in items[1:]:
        if (int(ds.Rows), int(ds.Columns)) != size:
            raise InputFileError(f"slices differ in size ({f.name} is {ds.Rows}x{ds.Columns}, "
                                 f"others {size[0]}x{size[1]})", path=folder,
                                 fix="pass one series with slices of one size")
        if np.abs(np.asarray([float(v) for v in ds.ImageOrientationPatient]) - iop).max() > 1e-4:
            raise InputFileError(f"slices differ in orientation ({f.name})", path=folder,
                                 fix="pass one series acquired in one orientation")
    for _, ds in items:
        tilt = float(getattr(ds, "GantryDetectorTilt", 0) or 0)
        if abs(tilt) > 1e-3:
            raise InputFileError(f"was acquired with gantry tilt {tilt:g} degrees",
                                 path=folder, fix="resample the series to an untilted grid "
                                 "(e.g. with 3D Slicer or dcm2niix) and pass the result")
    normal = np.cross(iop[:3], iop[3:])
    pos = np.asarray([[float(v) for v in ds.ImagePositionPatient] for _, ds in items])
    order = np.argsort(pos @ normal, kind="stable")
    items = [items[i] for i in order]
    pos = pos[order]
    steps = np.diff(pos, axis=0)
    gaps = np.linalg.norm(steps, axis=1)
    if (gaps < _POS_TOL_MM).any():
        k = int(np.argmax(gaps < _POS_TOL_MM))
        raise InputFileError(f"two slices share one position ({items[k][0].name}, "
                             f"{items[k + 1][0].name})", path=folder,
                             fix="the folder mixes acquisitions (or echoes/phases); keep one")
    sines = np.linalg.norm(np.cross(steps / gaps[:, None], normal), axis=1)
    if (sines > _TILT_TOL).any():
        deg = float(np.degrees(np.arcsin(min(1.0, sines.max()))))
        raise InputFileError(f"slice positions are sheared by {deg:.2f} degrees from the slice "
                             "normal (gantry tilt)", path=folder,
                             fix="resample the series to an untilted grid (e.g. with 3D Slicer"
                             " or dcm2niix) and pass the result")
    usual = float(np.median(gaps))
    uneven = np.abs(gaps - usual) > max(_POS_TOL_MM, _SPACING_RTOL * usual)
    if uneven.any():
        ratio = gaps / usual
        whole = np.abs(ratio - np.round(ratio)) < _SPACING_RTOL
        if (whole[uneven] & (np.round(ratio[uneven]) >= 2)).all():
            missing = int((np.round(ratio[uneven]) - 1).sum())
            k = int(np.argmax(uneven))
            raise InputFileError(f"series has {missing} missing slice(s) (first gap after "
                                 f"{items[k][0].name}: {gaps[k]:.2f} mm, usual {usual:.2f} mm)",
                                 path=folder, fix="copy the whole series into the folder")
        raise InputFileError(f"uneven slice spacing ({gaps.min():.3f} to {gaps.max():.3f} mm)",
                             path=folder, fix="resample the series to a regular grid first")
    return items


def read_dicom_series(
    folder: str | os.PathLike[str],
    *,
    series: str | None = None,
    dtype: Any = np.float32,
) -> Any:
    """Read one DICOM image series into a :class:`medcl.io.nifti.Volume` (RAS+ affine).

    Parameters
    ----------
    folder : path
        A folder (searched recursively) holding one series, or several with ``series`` chosen.
    series : str, optional
        ``SeriesInstanceUID`` of the series to read when the folder holds several.
    dtype : numpy dtype or None, default float32
        dtype of :attr:`Volume.data` after rescale slope/intercept; ``None`` keeps SimpleITK's.

    Returns
    -------
    Volume
        ``data`` of shape ``(columns, rows, slices)``, ``affine`` voxel -> RAS mm,
        ``path`` the folder and ``source`` a :class:`SeriesInfo` (for :func:`write_seg`).

    Raises
    ------
    InputFileError
        See the module docstring for what is refused.
    """
    import SimpleITK as sitk

    from .nifti import Volume

    root = Path(folder)
    if not root.is_dir():
        raise InputFileError("DICOM folder not found", path=root, fix="check the path")
    items = _sorted_slices(root, _choose_series(root, _headers(root), series))
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([os.fspath(f) for f, _ in items])
    try:
        img = reader.Execute()
    except RuntimeError as exc:
        raise InputFileError(f"SimpleITK cannot read the series ({str(exc).splitlines()[-1]})",
                             path=root, fix="check the files are an uncompressed or "
                             "standard-compressed image series") from exc
    if img.GetNumberOfComponentsPerPixel() != 1:
        raise InputFileError("series has colour (multi-component) pixels", path=root,
                             fix="pass a greyscale series")
    data = np.transpose(sitk.GetArrayFromImage(img), (2, 1, 0))  # (z,y,x) -> (x,y,z)
    if dtype is not None:
        data = data.astype(dtype, copy=False)
    direction = np.asarray(img.GetDirection(), float).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction * np.asarray(img.GetSpacing(), float)[None, :]
    lps[:3, 3] = img.GetOrigin()
    vol = Volume.from_array(np.ascontiguousarray(data), _LPS_TO_RAS @ lps)
    first = items[0][1]
    vol.path = root
    vol.source = SeriesInfo(folder=root, series_uid=str(first.SeriesInstanceUID),
                            files=[f for f, _ in items],
                            description=str(getattr(first, "SeriesDescription", "") or ""),
                            modality=str(getattr(first, "Modality", "") or ""))
    vol.notes.append(f"DICOM series {first.SeriesInstanceUID} ({len(items)} slices)")
    return vol


def write_seg(
    path: str | os.PathLike[str],
    labels: Any,
    like: Any,
    *,
    names: Mapping[int, str] | None = None,
    algorithm: str = "medcl",
) -> Path:
    """Write a label map over a DICOM-read volume as a DICOM Segmentation, atomically.

    Parameters
    ----------
    path : path
        Output file (``*.dcm``).
    labels : array_like, shape like ``like.data`` ``(X, Y, Z)``
        Integer labels, 0 = background; each other value present (or named) becomes a segment.
    like : Volume
        The volume returned by :func:`read_dicom_series` (its ``source`` names the instances).
    names : mapping int -> str, optional
        Segment labels (default ``"label N"``).
    algorithm : str
        Algorithm name recorded in the segment descriptions.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ConfigError
        ``like`` was not read from DICOM (a SEG needs source instances to reference).
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    source = getattr(like, "source", None)
    out = Path(path)
    if not isinstance(source, SeriesInfo):
        raise ConfigError("a DICOM SEG output needs a DICOM series input", path=out,
                          fix="name the output *.nii.gz, or pass the image as a DICOM folder")
    arr = np.asarray(labels)
    if arr.shape != tuple(like.data.shape):
        raise ValueError(f"labels shape {arr.shape} does not match the volume {like.data.shape}")
    arr = np.round(arr).astype(np.int64) if not np.issubdtype(arr.dtype, np.integer) else arr
    values = sorted(set(int(v) for v in np.unique(arr)) - {0} | set((names or {}).keys()) - {0})
    if not values:
        values = [1]
    if min(values) < 1 or max(values) > 65535:
        raise ValueError(f"label values must lie in 1..65535, got {values[0]}..{values[-1]}")
    sources = [pydicom.dcmread(f) for f in source.files]
    # frame k covers source instance k: (slices, rows, cols), segment numbers 1..n in order
    number = {v: i + 1 for i, v in enumerate(values)}
    lut = np.zeros(int(arr.max(initial=0)) + 1, np.uint16)
    for v, n in number.items():
        if v < lut.size:
            lut[v] = n
    frames = np.transpose(lut[np.clip(arr, 0, None)], (2, 1, 0))
    algo = hd.AlgorithmIdentificationSequence(name=algorithm, version="1",
                                              family=codes.cid7162.ArtificialIntelligence)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=number[v],
            segment_label=(names or {}).get(v, f"label {v}")[:64],
            segmented_property_category=codes.cid7150.Tissue,
            segmented_property_type=codes.cid7166.ConnectiveTissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo)
        for v in values]
    first = sources[0]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=int(getattr(first, "SeriesNumber", 1) or 1)
        + 1000, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer="medcl", manufacturer_model_name="medcl", software_versions="medcl",
        device_serial_number="0", omit_empty_frames=False)
    with atomic_path(out) as tmp:
        seg.save_as(tmp)
    return out


def write_series(
    folder: str | os.PathLike[str],
    data: Any,
    affine: Any,
    *,
    modality: str = "MR",
    slope: float = 1.0,
    intercept: float = 0.0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_uid: str | None = None,
    description: str = "medcl",
    gantry_tilt: float | None = None,
) -> list[Path]:
    """Write a 3-D volume ``(X, Y, Z)`` with a voxel -> RAS ``affine`` as a DICOM series
    (one file per slice ``k`` = ``data[:, :, k]``; stored value = (value - intercept) / slope
    as int16). The affine may be oblique; its third column must point away from the slice plane.

    Returns the files written (slice order). Each is written atomically.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    arr = np.asarray(data, float)
    if arr.ndim != 3:
        raise ValueError(f"write_series needs a 3-D volume, got shape {arr.shape}")
    lps = _LPS_TO_RAS @ np.asarray(affine, float)  # RAS -> LPS (the flip is its own inverse)
    cols = lps[:3, :3]
    spacing = np.linalg.norm(cols, axis=0)
    row_dir, col_dir = cols[:, 0] / spacing[0], cols[:, 1] / spacing[1]
    stored = np.round((arr - intercept) / slope)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError("values do not fit int16 with this slope/intercept")
    stored = stored.astype(np.int16)
    sop = {"MR": "1.2.840.10008.5.1.4.1.1.4", "CT": "1.2.840.10008.5.1.4.1.1.2"}[modality]
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = frame_uid or generate_uid()
    out_dir = Path(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for k in range(arr.shape[2]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = sop
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = sop, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality, ds.SeriesDescription, ds.SeriesNumber = modality, description, 1
        ds.InstanceNumber = k + 1
        ds.PatientName, ds.PatientID = "Phantom^medcl", "medcl-phantom"
        ds.PatientBirthDate, ds.PatientSex = "", ""
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.Manufacturer = "medcl"
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImageOrientationPatient = [f"{v:.10g}" for v in (*row_dir, *col_dir)]
        ds.ImagePositionPatient = [f"{v:.10g}" for v in lps[:3, :3] @ [0, 0, k] + lps[:3, 3]]
        ds.PixelSpacing = [f"{spacing[1]:.10g}", f"{spacing[0]:.10g}"]
        ds.SliceThickness = f"{spacing[2]:.10g}"
        if gantry_tilt is not None:
            ds.GantryDetectorTilt = gantry_tilt
        ds.Rows, ds.Columns = arr.shape[1], arr.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", f"{intercept:.10g}"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        target = out_dir / f"slice_{k:04d}.dcm"
        with atomic_path(target) as tmp:
            pydicom.dcmwrite(tmp, ds, enforce_file_format=True)
        written.append(target)
    return written


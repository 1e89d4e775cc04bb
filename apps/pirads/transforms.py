"""Preprocessing of axial T2 prostate MRI with an exact geometric inverse (MONAI).

The recipe follows the same lab's UATS pipeline used by the PI-RADS dual-path paper (Das,
Ghosh, Stober, arXiv:2309.12970): resample to 0.5 x 0.5 x 3.0 mm, clip intensities to the
1st-99th percentile and scale them to [0, 1], and centre crop / pad to 168 x 168 x 32 voxels.

Every geometric step (orientation, spacing, crop/pad) is a MONAI invertible transform, so a
prediction made in the preprocessed space can be mapped back onto the voxel grid of the input
scan with :func:`invert_to_input` and written with the input's affine and header by
:func:`save_like`.

Examples
--------
>>> data = preprocess("case.nii.gz")  # doctest: +SKIP
>>> tf = preprocess_transforms(with_label=False)  # doctest: +SKIP
>>> labels = invert_to_input(scores, data, tf)  # doctest: +SKIP
>>> save_like(labels, "case.nii.gz", "case_zones.nii.gz")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    Invertd,
    Lambdad,
    LoadImaged,
    Orientationd,
    ResizeWithPadOrCropd,
    ScaleIntensityRangePercentilesd,
    Spacingd,
)

from medcl.io import InputFileError, atomic_path

__all__ = [
    "CROP",
    "TARGET_SPACING",
    "invert_to_input",
    "preprocess",
    "preprocess_transforms",
    "save_like",
]

TARGET_SPACING: tuple[float, float, float] = (0.5, 0.5, 3.0)
"""Voxel spacing (mm) of the preprocessed space, as in the UATS / PI-RADS pipeline."""

CROP: tuple[int, int, int] = (168, 168, 32)
"""Spatial size (voxels) of the preprocessed volume: a fixed-size centre crop / pad."""

PathLike = str | os.PathLike[str]


def preprocess_transforms(
    *,
    spacing: Sequence[float] = TARGET_SPACING,
    crop: Sequence[int] | None = CROP,
    with_label: bool,
    channel: int | None = None,
) -> Compose:
    """Build the dictionary transforms that preprocess one case.

    Keys are ``"image"`` and, when ``with_label``, ``"label"`` (file paths in, channel-first
    :class:`monai.data.MetaTensor` out). Steps: load (channel first, metadata kept), reorient
    to RAS, resample to ``spacing`` (bilinear for the image, nearest for the label), clip the
    image to its 1st-99th intensity percentiles and scale to [0, 1], centre crop / pad to
    ``crop``, and make torch tensors that keep their metadata and transform history.
    ``channel`` picks one channel of a 4-D image (``(X, Y, Z, C)`` files) right after loading.

    Parameters
    ----------
    spacing : sequence of 3 floats
        Target voxel spacing in mm.
    crop : sequence of 3 ints or None
        Output spatial size in voxels; ``None`` keeps the whole resampled field of view (for
        sliding-window inference).
    with_label : bool
        Whether a ``"label"`` key is transformed alongside ``"image"``.
    channel : int, optional
        The channel of a 4-D image to keep (check it with :func:`medcl.io.nifti.read_volume`).

    Returns
    -------
    monai.transforms.Compose
        The transforms; keep it, :func:`invert_to_input` needs the same object.
    """
    if len(tuple(spacing)) != 3 or (crop is not None and len(tuple(crop)) != 3):
        raise ValueError(f"spacing and crop need 3 values each, got {spacing!r} and {crop!r}")
    keys = ["image", "label"] if with_label else ["image"]
    modes = ["bilinear", "nearest"] if with_label else ["bilinear"]
    steps = [
        LoadImaged(keys=keys, image_only=False, reader="NibabelReader"),
        EnsureChannelFirstd(keys=keys),
    ]
    if channel is not None:  # geometry-neutral, so its (no-op) inverse is right
        steps.append(Lambdad(keys="image", func=lambda x: x[channel : channel + 1]))
    steps += [
        Orientationd(keys=keys, axcodes="RAS", labels=None),
        Spacingd(keys=keys, pixdim=tuple(float(s) for s in spacing), mode=modes),
        ScaleIntensityRangePercentilesd(
            keys="image", lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True
        ),
    ]
    if crop is not None:
        steps.append(ResizeWithPadOrCropd(keys=keys, spatial_size=tuple(int(c) for c in crop)))
    steps.append(EnsureTyped(keys=keys, track_meta=True))
    return Compose(steps)


def _check_nifti(path: PathLike, role: str, channel: int | None = None) -> tuple[int, ...]:
    """Return the spatial shape of a readable 3D NIfTI (or 4-D with ``channel`` chosen) or raise
    :class:`InputFileError`."""
    from medcl.io.nifti import load_nifti

    p, img, _ = load_nifti(path)
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and (shape[3] == 1 or channel is not None):
        shape = shape[:3]
    if len(shape) != 3:
        raise InputFileError(
            f"{role} must be a 3D volume, got shape {shape}",
            path=p,
            fix="give one axial T2 volume per file, or pass --channel N for a 4-D file",
        )
    return shape


def preprocess(
    image_path: PathLike,
    label_path: PathLike | None = None,
    *,
    transforms: Compose | None = None,
    channel: int | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Preprocess one case with :func:`preprocess_transforms`.

    Parameters
    ----------
    image_path : str or os.PathLike
        Axial T2 NIfTI.
    label_path : str or os.PathLike, optional
        Zone label NIfTI on the same voxel grid (0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS).
    transforms : monai.transforms.Compose, optional
        Transforms to use (built with ``with_label=label_path is not None``); by default they
        are built from ``**kw``. Reuse one object across cases to save set-up time.
    channel : int, optional
        The channel of a 4-D image (the transforms must have been built with it).
    **kw
        ``spacing`` and ``crop`` passed to :func:`preprocess_transforms`.

    Returns
    -------
    dict
        ``"image"``: MetaTensor ``(1, *crop)`` in [0, 1]; ``"label"`` (if given): MetaTensor
        ``(1, *crop)``; MONAI's ``*_meta_dict`` entries; and ``"transforms"``, the Compose
        that was applied. MONAI inverts a transform only with the very object that recorded
        it, which is why it travels with the data; :func:`invert_to_input` uses it.

    Raises
    ------
    medcl.io.InputFileError
        A file is missing, unreadable, not 3D, or the label's grid differs from the image's.
    """
    shape = _check_nifti(image_path, "image", channel)
    case: dict[str, Any] = {"image": os.fspath(image_path)}
    if label_path is not None:
        lshape = _check_nifti(label_path, "label")
        if lshape != shape:
            raise InputFileError(
                f"label shape {lshape} differs from image shape {shape} ({image_path})",
                path=label_path,
                fix="give the label map drawn on this image's voxel grid",
            )
        case["label"] = os.fspath(label_path)
    if transforms is None:
        transforms = preprocess_transforms(with_label=label_path is not None, channel=channel,
                                           **kw)
    elif kw:
        raise TypeError(f"give either transforms or {sorted(kw)}, not both")
    out = dict(transforms(case))
    out["transforms"] = transforms
    return out


def invert_to_input(
    pred: torch.Tensor | np.ndarray,
    data: dict[str, Any],
    transforms: Compose | None = None,
) -> np.ndarray:
    """Map a prediction from the preprocessed space back onto the input scan's voxel grid.

    The geometric steps recorded on ``data["image"]`` (orientation, spacing, crop/pad) are
    undone with :class:`monai.transforms.Invertd`; intensity scaling is not geometric and is
    not undone.

    Parameters
    ----------
    pred : torch.Tensor or numpy.ndarray, shape (K, X, Y, Z) or (1, X, Y, Z)
        Prediction in the preprocessed space (spatial shape = the crop). ``K > 1``: per-class
        scores (probabilities or logits, class index = zone label); they are resampled
        linearly and the argmax is taken *after* inversion, which keeps smooth boundaries.
        ``K == 1``: a label map; it is resampled with nearest-neighbour interpolation so no
        new label values appear.
    data : dict
        The output of :func:`preprocess` for this case.
    transforms : monai.transforms.Compose, optional
        The very Compose object that produced ``data`` (MONAI checks its identity); by
        default ``data["transforms"]``, as stored by :func:`preprocess`.

    Returns
    -------
    numpy.ndarray, shape = the input scan's shape
        Labels (``int64``) in the input file's original voxel order.
    """
    if "image" not in data or not isinstance(data["image"], MetaTensor):
        raise ValueError("data must be the dict returned by preprocess() (MetaTensor 'image')")
    if transforms is None:
        if "transforms" not in data:
            raise ValueError("data has no 'transforms'; pass the Compose used by preprocess()")
        transforms = data["transforms"]
    pred_t = torch.as_tensor(np.asarray(pred) if isinstance(pred, np.ndarray) else pred)
    image = data["image"]
    if pred_t.ndim != 4 or tuple(pred_t.shape[1:]) != tuple(image.shape[1:]):
        raise ValueError(
            f"pred must have shape (K, {', '.join(map(str, image.shape[1:]))}), "
            f"got {tuple(pred_t.shape)}"
        )
    is_label = pred_t.shape[0] == 1
    pred_t = pred_t.float()
    pred_m = MetaTensor(pred_t)  # Invertd copies the image's metadata and history onto it
    inverter = Invertd(
        keys="pred",
        transform=transforms,
        orig_keys="image",
        nearest_interp=is_label,
        to_tensor=True,
    )
    item = {k: v for k, v in data.items() if k not in ("pred", "transforms")}
    item["pred"] = pred_m
    out = inverter(item)["pred"]
    arr = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    if is_label:
        return np.rint(arr[0]).astype(np.int64)
    return np.argmax(arr, axis=0).astype(np.int64)


def _storage_dtype(array: np.ndarray) -> np.dtype:
    """Smallest sensible on-disk dtype: labels as uint8/int16/int32, floats as float32."""
    if array.dtype == bool:
        return np.dtype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        lo, hi = (int(array.min()), int(array.max())) if array.size else (0, 0)
        for dt in (np.uint8, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def save_like(array: np.ndarray, reference_path: PathLike, out_path: PathLike, *,
              channel: int | None = None) -> Path:
    """Write ``array`` as NIfTI with the affine and header of a reference file, atomically.

    Parameters
    ----------
    array : numpy.ndarray, shape = the reference's spatial shape
        Volume in the reference's voxel order (e.g. from :func:`invert_to_input`). Integer /
        boolean arrays are stored as the smallest integer type that holds them, floats as
        ``float32``; intensity scaling (``scl_slope``/``scl_inter``) is reset.
    reference_path : str or os.PathLike
        The input scan whose geometry the output keeps.
    out_path : str or os.PathLike
        Output ``.nii`` / ``.nii.gz`` file (written through :func:`medcl.io.atomic_path`).
    channel : int, optional
        Set when the reference is a 4-D file whose channel ``channel`` was segmented; the
        output is 3-D on its spatial grid.

    Returns
    -------
    pathlib.Path
        ``out_path``.
    """
    shape = _check_nifti(reference_path, "reference", channel)
    ref = nib.load(reference_path)
    arr = np.asarray(array)
    if tuple(arr.shape[:3]) != shape:
        raise InputFileError(
            f"array shape {tuple(arr.shape)} does not match the reference shape {shape}",
            path=reference_path,
            fix="invert the prediction to the input grid first (invert_to_input)",
        )
    dtype = _storage_dtype(arr)
    header = ref.header.copy()
    header.set_data_dtype(dtype)
    img = nib.Nifti1Image(arr.astype(dtype, copy=False), ref.affine, header=header)
    qform, qcode = ref.header.get_qform(coded=True)
    sform, scode = ref.header.get_sform(coded=True)
    img.set_qform(qform if qform is not None else ref.affine, code=int(qcode or 0))
    img.set_sform(sform if sform is not None else ref.affine, code=int(scode or 0))
    img.header.set_slope_inter(None, None)
    with atomic_path(out_path) as tmp:
        nib.save(img, tmp)
    return Path(out_path)

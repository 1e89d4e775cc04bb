"""Preprocessing of axial T2 prostate MRI with an exact geometric inverse.

The recipe follows the same lab's UATS pipeline used by the PI-RADS dual-path paper (Das,
Ghosh, Stober, arXiv:2309.12970): resample to 0.5 x 0.5 x 3.0 mm, clip intensities to the
1st-99th percentile and scale them to [0, 1], and centre crop / pad to 168 x 168 x 32 voxels.

Each case is read once, by :mod:`medcl.io.nifti` (its checks and error messages: missing or
corrupt file, 4-D without a channel, NaN, label geometry), and turned into RAS+ voxel order by
:class:`medcl.io.nifti.Canonical` (axis permutations and flips only, exact). MONAI gets that
array as a :class:`monai.data.MetaTensor` carrying the RAS affine and does what is MONAI's job:
resampling (``Spacingd``), intensity scaling and the crop / pad, each recorded so that
:func:`invert_to_input` can undo the geometric ones with ``Invertd`` and then put the voxels
back into the input file's order. Outputs are written with the input's geometry by
:func:`medcl.io.nifti.write_volume`.

Examples
--------
>>> vol = read_volume("case.nii.gz")  # doctest: +SKIP
>>> data = preprocess(vol)  # doctest: +SKIP
>>> labels = invert_to_input(scores, data)  # doctest: +SKIP
>>> write_volume("case_zones.nii.gz", labels, like=vol, dtype="uint8")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    EnsureTyped,
    Invertd,
    ResizeWithPadOrCropd,
    ScaleIntensityRangePercentilesd,
    Spacingd,
)

from medcl.io.nifti import Canonical, Volume, read_labels, read_volume

__all__ = [
    "CROP",
    "TARGET_SPACING",
    "invert_to_input",
    "preprocess",
    "preprocess_transforms",
    "to_meta_tensor",
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
) -> Compose:
    """Build the MONAI dictionary transforms that preprocess one case already in RAS order.

    Keys are ``"image"`` and, when ``with_label``, ``"label"`` (channel-first
    :class:`monai.data.MetaTensor` in RAS order with their affine, as :func:`to_meta_tensor`
    makes them; :func:`preprocess` does). Steps: resample to ``spacing`` (bilinear for the
    image, nearest for the label), clip the image to its 1st-99th intensity percentiles and
    scale to [0, 1], centre crop / pad to ``crop``, and make torch tensors that keep their
    metadata and transform history.

    Parameters
    ----------
    spacing : sequence of 3 floats
        Target voxel spacing in mm.
    crop : sequence of 3 ints or None
        Output spatial size in voxels; ``None`` keeps the whole resampled field of view (for
        sliding-window inference).
    with_label : bool
        Whether a ``"label"`` key is transformed alongside ``"image"``.

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
        Spacingd(keys=keys, pixdim=tuple(float(s) for s in spacing), mode=modes),
        ScaleIntensityRangePercentilesd(
            keys="image", lower=1, upper=99, b_min=0.0, b_max=1.0, clip=True
        ),
    ]
    if crop is not None:
        steps.append(ResizeWithPadOrCropd(keys=keys, spatial_size=tuple(int(c) for c in crop)))
    steps.append(EnsureTyped(keys=keys, track_meta=True))
    return Compose(steps)


def to_meta_tensor(vol: Volume, canonical: Canonical | None = None) -> MetaTensor:
    """A volume read by :mod:`medcl.io.nifti`, as MONAI wants it: channel first, RAS order.

    Parameters
    ----------
    vol : medcl.io.nifti.Volume
        The volume in its file's voxel order.
    canonical : medcl.io.nifti.Canonical, optional
        Its map to RAS (default ``Canonical.of(vol)``); pass the image's for its label map.

    Returns
    -------
    monai.data.MetaTensor, shape (1, *canonical.ras_shape), float32
        The voxels in RAS order, with the RAS voxel-to-world ``affine``, and the file name and
        the stored affine in its metadata.
    """
    can = Canonical.of(vol) if canonical is None else canonical
    if tuple(vol.shape) != tuple(can.shape):
        raise ValueError(f"volume shape {vol.shape} differs from the map's {can.shape}")
    ras = np.ascontiguousarray(can.forward(vol.data), dtype=np.float32)[None]
    affine = torch.as_tensor(can.forward_affine(vol.affine), dtype=torch.float64)
    meta = {"filename_or_obj": "" if vol.path is None else os.fspath(vol.path),
            "original_affine": np.asarray(vol.affine, dtype=np.float64),
            "spatial_shape": np.asarray(can.ras_shape)}
    return MetaTensor(torch.from_numpy(ras), affine=affine, meta=meta)


def preprocess(
    image: PathLike | Volume,
    label: PathLike | Volume | None = None,
    *,
    transforms: Compose | None = None,
    channel: int | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Preprocess one case with :func:`preprocess_transforms`.

    Parameters
    ----------
    image : str, os.PathLike or medcl.io.nifti.Volume
        Axial T2 NIfTI, or the volume already read from it (then it is not read again).
    label : str, os.PathLike or medcl.io.nifti.Volume, optional
        Zone label map on the image's voxel grid (0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS, or a
        dataset's own codes: nearest-neighbour resampling and zero padding keep them); a file
        is read with :func:`medcl.io.nifti.read_labels` and checked against the image.
    transforms : monai.transforms.Compose, optional
        Transforms to use (built with ``with_label=label is not None``); by default they are
        built from ``**kw``. Reuse one object across cases to save set-up time.
    channel : int, optional
        The channel of a 4-D image file (only when ``image`` is a path).
    **kw
        ``spacing`` and ``crop`` passed to :func:`preprocess_transforms`.

    Returns
    -------
    dict
        ``"image"``: MetaTensor ``(1, *crop)`` in [0, 1]; ``"label"`` (if given): MetaTensor
        ``(1, *crop)``; ``"transforms"``, the Compose that was applied (MONAI inverts a
        transform only with the very object that recorded it, which is why it travels with the
        data); ``"canonical"``, the image's :class:`~medcl.io.nifti.Canonical`.
        :func:`invert_to_input` uses the last two.

    Raises
    ------
    medcl.io.InputFileError
        A file is missing, unreadable, not 3-D, holds NaN, or the label's geometry differs
        from the image's.
    """
    if isinstance(image, Volume):
        if channel is not None:
            raise TypeError("channel applies to an image file; this volume is already read")
        vol = image
    else:
        vol = read_volume(image, channel=channel)
    if label is None or isinstance(label, Volume):
        lab = label
    else:
        lab = read_labels(label, like=vol)
    if lab is not None and tuple(lab.shape) != tuple(vol.shape):
        raise ValueError(f"label shape {lab.shape} differs from image shape {vol.shape}")
    if transforms is None:
        transforms = preprocess_transforms(with_label=lab is not None, **kw)
    elif kw:
        raise TypeError(f"give either transforms or {sorted(kw)}, not both")
    can = Canonical.of(vol)
    case = {"image": to_meta_tensor(vol, can)}
    if lab is not None:
        case["label"] = to_meta_tensor(lab, can)
    out = dict(transforms(case))
    out["transforms"] = transforms
    out["canonical"] = can
    return out


def invert_to_input(
    pred: torch.Tensor | np.ndarray,
    data: dict[str, Any],
    transforms: Compose | None = None,
) -> np.ndarray:
    """Map a prediction from the preprocessed space back onto the input scan's voxel grid.

    The geometric steps MONAI recorded on ``data["image"]`` (spacing, crop/pad) are undone
    with :class:`monai.transforms.Invertd`, which gives the RAS-ordered input grid; the
    reorientation is then undone by ``data["canonical"]`` (exact: axis permutations and flips).
    Intensity scaling is not geometric and is not undone.

    Parameters
    ----------
    pred : torch.Tensor or numpy.ndarray, shape (K, X, Y, Z) or (1, X, Y, Z)
        Prediction in the preprocessed space (spatial shape = the crop). ``K > 1``: per-class
        scores (probabilities or logits, class index = zone label); they are resampled
        linearly and the argmax is taken *after* inversion, which keeps smooth boundaries.
        ``K == 1``: a label map; it is resampled with nearest-neighbour interpolation so no
        new label values appear.
    data : dict
        The output of :func:`preprocess` for this case (with its ``"canonical"``).
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
    canonical = data.get("canonical")
    if not isinstance(canonical, Canonical):
        raise ValueError("data has no 'canonical'; pass the dict returned by preprocess()")
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
    item = {k: v for k, v in data.items() if k not in ("pred", "transforms", "canonical")}
    item["pred"] = pred_m
    out = inverter(item)["pred"]
    arr = out.detach().cpu().numpy() if isinstance(out, torch.Tensor) else np.asarray(out)
    labels = np.rint(arr[0]) if is_label else np.argmax(arr, axis=0)
    if tuple(labels.shape) != tuple(canonical.ras_shape):
        raise ValueError(f"inverted prediction has shape {labels.shape}, expected the input's "
                         f"RAS shape {canonical.ras_shape}")
    return np.ascontiguousarray(canonical.backward(labels)).astype(np.int64)

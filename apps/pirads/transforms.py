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
import torch.nn.functional as F
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    EnsureTyped,
    Invertd,
    MapTransform,
    RandBiasFieldd,
    RandGaussianNoised,
    Randomizable,
    RandScaleIntensityd,
    RandShiftIntensityd,
    ResizeWithPadOrCropd,
    ScaleIntensityRangePercentilesd,
    Spacingd,
)

from medcl.io.nifti import Canonical, Volume, read_labels, read_volume

__all__ = [
    "CROP",
    "TARGET_SPACING",
    "RandPhysicalSpatiald",
    "augment_transforms",
    "crop_around",
    "gland_centre",
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


# --------------------------------------------------------------------------- training crops


def gland_centre(label: torch.Tensor | np.ndarray) -> tuple[int, ...]:
    """Voxel index of the centre of the gland (``label > 0``) of a label map.

    Parameters
    ----------
    label : torch.Tensor or numpy.ndarray, shape (..., X, Y, Z)
        Label map (leading axes, e.g. a channel, are pooled); negative values count as
        background.

    Returns
    -------
    tuple of 3 int
        The rounded centroid of the gland voxels; the centre of the field of view when the
        map holds no gland.
    """
    arr = torch.as_tensor(np.asarray(label) if isinstance(label, np.ndarray) else label)
    mask = (arr > 0).reshape(-1, *arr.shape[-3:]).any(dim=0)
    if not bool(mask.any()):
        return tuple(int(n) // 2 for n in mask.shape)
    idx = mask.nonzero().double().mean(dim=0)
    return tuple(int(round(float(v))) for v in idx)


def crop_around(vol: torch.Tensor, centre: Sequence[int], size: Sequence[int],
                fill: float = 0.0) -> torch.Tensor:
    """The box of ``size`` voxels centred on ``centre`` (padded with ``fill`` where it leaves
    the volume).

    Parameters
    ----------
    vol : torch.Tensor, shape (C, X, Y, Z)
        Volume, channel first.
    centre : sequence of 3 int
        Voxel the box is centred on (the box starts at ``centre - size // 2``).
    size : sequence of 3 int
        Box size in voxels.
    fill : float
        Value of the voxels outside ``vol``.

    Returns
    -------
    torch.Tensor, shape (C, *size)
        A new tensor (``vol`` is not modified).
    """
    if vol.ndim != 4 or len(tuple(centre)) != 3 or len(tuple(size)) != 3:
        raise ValueError(f"vol must be (C, X, Y, Z) and centre/size 3 values, got "
                         f"{tuple(vol.shape)}, {centre!r}, {size!r}")
    out = vol.new_full((vol.shape[0], *(int(s) for s in size)), fill)
    src, dst = [], []
    for n, c, s in zip(vol.shape[1:], centre, size, strict=True):
        start = int(c) - int(s) // 2
        lo, hi = max(start, 0), min(start + int(s), int(n))
        if hi <= lo:  # the box misses the volume along this axis
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[(slice(None), *dst)] = vol[(slice(None), *src)]
    return out


class RandPhysicalSpatiald(MapTransform, Randomizable):
    """Random similarity transform and smooth deformation drawn in millimetres, not voxels.

    MONAI's random spatial transforms draw their parameters in voxel units; on
    0.5 x 0.5 x 3 mm volumes a "rotation" about a through-plane axis drawn there is a shear in
    the patient, and an elastic offset of one voxel is 0.5 mm in-plane but 3 mm through-plane.
    This transform draws both in physical space and resamples each key once
    (:func:`torch.nn.functional.grid_sample`), with the same draw for every key:

    - a similarity transform as the UATS pipeline of the same lab does with SimpleITK
      (Meyer et al. 2021, arXiv:2104.03840; github suhitaghosh10/UATS,
      ``AugmentationGenerator.py``): rotations within +-10 deg about each axis, isotropic scale
      0.9-1.1, translations within +-4 mm in-plane and +-6 mm through-plane, about the centre
      of the volume; its voxel-space form is ``S^-1 (s R) S`` with ``S`` the voxel spacing;
    - with probability ``elastic_prob``, a smooth deformation: random offsets (uniform, at most
      ``elastic_mm`` per axis in mm) on a coarse control grid of about ``grid_mm`` spacing,
      interpolated trilinearly to every voxel (an order-1 B-spline deformation; MONAI's
      ``Rand3DElasticd`` smooths a dense field with a Gaussian in voxel units instead, ~50x
      slower here on a CPU and anisotropic in mm).

    The UATS pipeline also flips left-right; this one never does (see
    :func:`augment_transforms`). A signed-distance key listed in ``distance_keys`` is divided
    by the drawn scale, which keeps it the exact distance (mm) to the transformed surface under
    the similarity part; under the small deformation it is an approximation.

    Parameters
    ----------
    keys : sequence of str
        Keys to transform, channel-first ``(C, X, Y, Z)`` arrays of one shape.
    spacing : sequence of 3 float
        Voxel spacing (mm) of the arrays.
    rotate_deg : float
        Largest absolute rotation about each axis, degrees.
    scale : tuple of 2 float
        Range of the isotropic scale factor.
    translate_mm : sequence of 3 float
        Largest absolute translation per axis, mm.
    elastic_mm, grid_mm, elastic_prob : float
        Largest control-point offset (mm), control-grid spacing (mm), probability of the
        deformation.
    mode : sequence of str
        ``"bilinear"`` or ``"nearest"`` per key (``"nearest"`` for label maps, which keep their
        integer codes and dtype).
    distance_keys : sequence of str
        Keys holding signed distances in mm.
    prob : float
        Probability of transforming a sample at all.
    """

    def __init__(self, keys: Sequence[str], *, spacing: Sequence[float] = TARGET_SPACING,
                 rotate_deg: float = 10.0, scale: tuple[float, float] = (0.9, 1.1),
                 translate_mm: Sequence[float] = (4.0, 4.0, 6.0), elastic_mm: float = 1.5,
                 grid_mm: float = 15.0, elastic_prob: float = 0.5,
                 mode: Sequence[str] = ("bilinear",), distance_keys: Sequence[str] = (),
                 prob: float = 1.0) -> None:
        MapTransform.__init__(self, keys)
        if len(tuple(mode)) != len(self.keys) or any(m not in ("bilinear", "nearest")
                                                     for m in mode):
            raise ValueError("mode needs one entry per key, 'bilinear' or 'nearest'")
        self.spacing = np.asarray(spacing, dtype=np.float64)
        self.rotate = float(np.deg2rad(rotate_deg))
        self.scale_range = (float(scale[0]), float(scale[1]))
        self.translate_mm = np.asarray(translate_mm, dtype=np.float64)
        self.elastic_mm, self.grid_mm = float(elastic_mm), float(grid_mm)
        self.elastic_prob = float(elastic_prob)
        self.mode = tuple(mode)
        self.distance_keys = set(distance_keys)
        self.prob = float(prob)
        self.matrix: np.ndarray | None = None
        self.scale = 1.0
        self.offsets: np.ndarray | None = None

    def randomize(self, data: Any = None) -> None:
        """Draw the similarity (``self.matrix``, voxel space, 4 x 4) and the control-grid
        offsets (``self.offsets``, mm, or ``None``) for spatial shape ``data``."""
        self.matrix, self.offsets = None, None
        if self.R.rand() >= self.prob:
            return
        ax, ay, az = self.R.uniform(-self.rotate, self.rotate, 3)
        cx, cy, cz, sx, sy, sz = (np.cos(ax), np.cos(ay), np.cos(az), np.sin(ax), np.sin(ay),
                                  np.sin(az))
        rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
        self.scale = float(self.R.uniform(*self.scale_range))
        s = np.diag(self.spacing)
        m = np.eye(4)
        m[:3, :3] = np.linalg.inv(s) @ (self.scale * (rz @ ry @ rx)) @ s
        m[:3, 3] = self.R.uniform(-1.0, 1.0, 3) * self.translate_mm / self.spacing
        self.matrix = m
        if data is not None and self.elastic_mm > 0 and self.R.rand() < self.elastic_prob:
            extent = np.asarray(data, dtype=np.float64) * self.spacing
            nodes = np.maximum(2, np.ceil(extent / self.grid_mm).astype(int) + 1)
            self.offsets = self.R.uniform(-self.elastic_mm, self.elastic_mm, (3, *nodes))

    def _grid(self, shape: Sequence[int]) -> torch.Tensor:
        """``grid_sample`` grid (1, X, Y, Z, 3) of the drawn map, output -> input voxels."""
        assert self.matrix is not None
        n = torch.as_tensor(shape, dtype=torch.float32)
        c = (n - 1) / 2
        axes = [torch.arange(int(k), dtype=torch.float32) - ck for k, ck in zip(n, c,
                                                                                strict=True)]
        p = torch.stack(torch.meshgrid(*axes, indexing="ij"))  # (3, X, Y, Z), centred voxels
        m = torch.as_tensor(self.matrix, dtype=torch.float32)
        q = torch.einsum("ij,jxyz->ixyz", m[:3, :3], p) + m[:3, 3].reshape(3, 1, 1, 1)
        if self.offsets is not None:
            field = torch.as_tensor(self.offsets / self.spacing.reshape(3, 1, 1, 1),
                                    dtype=torch.float32)
            q = q + F.interpolate(field[None], size=tuple(int(k) for k in shape),
                                  mode="trilinear", align_corners=True)[0]
        q = (q + c.reshape(3, 1, 1, 1)) / (n - 1).clamp(min=1).reshape(3, 1, 1, 1) * 2 - 1
        # grid_sample's last axis lists (W, H, D) = (Z, Y, X) coordinates
        return q.flip(0).permute(1, 2, 3, 0)[None].float()

    def __call__(self, data: Any) -> dict[str, Any]:
        """Transform every key of ``data`` with one draw."""
        d = dict(data)
        present = [k for k in self.keys if k in d]
        if not present:
            return d
        shape = tuple(_plain(d[present[0]]).shape[1:])
        self.randomize(shape)
        if self.matrix is None:
            return d
        grid = self._grid(shape)
        for mode in ("bilinear", "nearest"):  # one resampling call per mode
            keys = [k for k, m in zip(self.keys, self.mode, strict=True) if m == mode and k in d]
            if not keys:
                continue
            xs = [_plain(d[k]) for k in keys]
            for key, x in zip(keys, xs, strict=True):
                if tuple(x.shape[1:]) != shape:
                    raise ValueError(f"{key!r} has spatial shape {tuple(x.shape[1:])}, "
                                     f"{present[0]!r} {shape}")
            out = F.grid_sample(torch.cat([x.float() for x in xs])[None], grid, mode=mode,
                                padding_mode="border", align_corners=True)[0]
            for key, x, part in zip(keys, xs, out.split([len(x) for x in xs]), strict=True):
                if key in self.distance_keys:
                    part = part / self.scale
                d[key] = (part.round() if mode == "nearest" else part).to(x.dtype)
        return d


def _plain(x: Any) -> torch.Tensor:
    return x.as_tensor() if isinstance(x, MetaTensor) else torch.as_tensor(x)


def augment_transforms(*, spacing: Sequence[float] = TARGET_SPACING,
                       keys: Sequence[str] = ("image", "label", "sdf"),
                       elastic: bool = True) -> Compose:
    """The 3-D training augmentation: MONAI dictionary transforms on image, zones and distance.

    Spatial, one draw and one resampling for every key: :class:`RandPhysicalSpatiald`
    (rotation <= 10 deg about each axis, scale 0.9-1.1, translation +-4/4/6 mm as the UATS
    pipeline; with probability 0.5 a smooth deformation of at most 1.5 mm on a 15 mm control
    grid). Labels use nearest-neighbour sampling (they stay integer codes of the same dtype),
    the image and the signed distance (third key) bilinear sampling. Intensity (image only,
    each with probability 0.5): :class:`~monai.transforms.RandScaleIntensityd` +-10 %,
    :class:`~monai.transforms.RandShiftIntensityd` +-0.1 (values are in [0, 1]),
    :class:`~monai.transforms.RandBiasFieldd` (degree 3, coefficients up to 0.05: a field of
    about 0.8-1.6 across the crop),
    :class:`~monai.transforms.RandGaussianNoised` (std 0.03).

    There is **no left-right flip**, although the UATS pipeline flips (its ``FLIP_HORIZ``): the
    PI-RADS sector map names left and right halves in the patient frame, and a network trained
    on mirrored scans is not told which side is which; the zones' near symmetry is already
    present in the data without it.

    Parameters
    ----------
    spacing : sequence of 3 float
        Voxel spacing (mm) of the arrays.
    keys : sequence of str
        The image key, the label key and optionally the signed-distance key, in that order.
    elastic : bool
        Include the smooth deformation.

    Returns
    -------
    monai.transforms.Compose
        Call :meth:`~monai.transforms.Compose.set_random_state` to seed it.
    """
    keys = tuple(keys)
    if len(keys) not in (2, 3):
        raise ValueError(f"keys: image, label and optionally sdf, got {keys!r}")
    modes = ("bilinear", "nearest", "bilinear")[: len(keys)]
    return Compose([
        RandPhysicalSpatiald(keys, spacing=spacing, mode=modes, distance_keys=keys[2:],
                             elastic_mm=1.5 if elastic else 0.0),
        RandScaleIntensityd(keys="image", factors=0.1, prob=0.5),
        RandShiftIntensityd(keys="image", offsets=0.1, prob=0.5),
        RandBiasFieldd(keys="image", degree=3, coeff_range=(0.0, 0.05), prob=0.5),
        RandGaussianNoised(keys="image", std=0.03, prob=0.5),
    ])

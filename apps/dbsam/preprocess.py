"""Intensity normalisation and SAM input geometry for DB-SAM.

DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172) keeps the input pipeline of MedSAM
(Ma et al., "Segment anything in medical images", Nature Communications 2024), which in turn
keeps the one of SAM (Kirillov et al., ICCV 2023):

1. **Intensities** to ``[0, 1]`` (:func:`normalize_intensity`): CT is windowed (MedSAM uses the
   soft-tissue window, level 40 / width 400 HU); MR and other modalities are clipped to the
   0.5-99.5 percentiles of their non-zero voxels and min-max scaled.
2. **Slice to model input** (:func:`slice_to_input`): scaled to ``0..255``, grey replicated
   to three channels, resized so that the longest side is ``S`` (aspect kept, SAM's
   ``ResizeLongestSide``), normalised with SAM's pixel mean and std, then zero-padded at the
   bottom and right to ``S x S`` (SAM pads after normalising).
3. **Geometry** (:class:`SliceGeometry`): maps box and mask prompts from slice pixels to the
   model input and maps the model's low-resolution logits (``S/4 x S/4``, covering the padded
   input) back to the slice, like ``Sam.postprocess_masks``.

**LiteMedSAM** (``style="litemedsam"``; the CVPR 2024 "Segment Anything in Medical Images on
Laptop" baseline, MedSAM repository branch ``LiteMedSAM``, ``CVPR24_LiteMedSAM_infer.py``): the
slice (CT already windowed as MedSAM, step 1) is replicated to three channels, resized so that
its longest side is 256, min-max scaled to ``[0, 1]`` over the resized image (no pixel mean and
std), zero-padded at the bottom and right to 256 x 256; the box is scaled by ``256 / max(H, W)``;
the decoder's logits are 256 x 256 (the TinyViT embedding is 64 x 64, S/4), cropped to the
unpadded ``(h, w)`` and resized bilinearly to the slice. Departure: the authors resize the
image with OpenCV's ``INTER_AREA``; here the resize is torch's antialiased bilinear (as for
SAM), which differs from area averaging by a fraction of a grey level on smooth images.

Conventions: a 2-D image is ``(H, W)`` (rows, columns); a box is ``xyxy = (x0, y0, x1, y1)``
with ``x`` a column and ``y`` a row index and *inclusive* maxima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide

from medcl.io.errors import ConfigError

__all__ = [
    "CT_PRESETS",
    "DEFAULT_CT_PRESET",
    "MASK_PROMPT_LOGIT",
    "MODALITIES",
    "PIXEL_MEAN",
    "STYLES",
    "PIXEL_STD",
    "SliceGeometry",
    "normalize_intensity",
    "slice_to_input",
]

CT_PRESETS: dict[str, tuple[float, float]] = {
    "soft-tissue": (40.0, 400.0),
    "abdomen": (50.0, 400.0),
    "liver": (30.0, 150.0),
    "mediastinum": (50.0, 350.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
"""CT windows as ``(level, width)`` in Hounsfield units.

``soft-tissue`` is MedSAM's CT window (the default); the others are the usual radiology
display windows (as listed e.g. by Radiopaedia, "Windowing (CT)").
"""

DEFAULT_CT_PRESET = "soft-tissue"
"""The preset used for CT when neither ``window`` nor ``preset`` is given (MedSAM)."""

MODALITIES: tuple[str, ...] = ("ct", "mr", "other")
"""Modalities :func:`normalize_intensity` accepts (``"mri"`` is read as ``"mr"``)."""

PIXEL_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
"""SAM's per-channel pixel mean (ImageNet mean on the 0-255 scale)."""

PIXEL_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)
"""SAM's per-channel pixel standard deviation (ImageNet std on the 0-255 scale)."""

MASK_PROMPT_LOGIT = 8.0
"""Magnitude of the logits that encode a binary mask prompt (see
:meth:`SliceGeometry.mask_to_input`).

SAM's mask prompt is a previous low-resolution *logit* map, thresholded at 0; a confident
SAM prediction has logits of roughly +-5 to +-20. +-8 (sigmoid 0.9997) reads as "certain"
without being far outside the range the prompt encoder saw in training.
"""

STYLES: tuple[str, ...] = ("sam", "litemedsam")
"""Input pipelines: SAM's (mean/std, S/4 logits) and LiteMedSAM's (min-max, S logits)."""

_PERCENTILES = (0.5, 99.5)  # MedSAM's MR / non-CT intensity cut-off


def _canonical_modality(modality: str) -> str:
    m = str(modality).strip().lower()
    m = {"mri": "mr"}.get(m, m)
    if m not in MODALITIES:
        raise ConfigError(
            f"unknown modality {modality!r}",
            fix=f"use one of {', '.join(MODALITIES)}",
        )
    return m


def normalize_intensity(
    volume: np.ndarray,
    modality: str,
    *,
    window: tuple[float, float] | None = None,
    preset: str | None = None,
) -> np.ndarray:
    """Scale a volume (or image) to ``[0, 1]`` the way MedSAM prepares its inputs.

    Parameters
    ----------
    volume : numpy.ndarray
        Intensities of any shape; CT in Hounsfield units.
    modality : {"ct", "mr", "other"}
        ``"mri"`` is accepted as ``"mr"``. Case-insensitive.
    window : tuple of float, optional
        ``(level, width)`` of an explicit window. It is applied whatever the modality (an
        explicit window is the user's choice), and excludes ``preset``.
    preset : str, optional
        A name of :data:`CT_PRESETS`; CT only. Default for CT: ``"soft-tissue"`` (40/400 HU,
        MedSAM).

    Returns
    -------
    numpy.ndarray of float32
        Same shape, values in ``[0, 1]``.

        - CT (or any explicit window): clipped to ``[L - W/2, L + W/2]`` and scaled linearly.
        - MR and other: clipped to the 0.5 and 99.5 percentiles of the *non-zero* voxels of
          the whole array (zeros are usually padding or air outside the field of view), then
          min-max scaled. An array whose non-zero voxels are constant, or that has none, gives
          zeros.

    Raises
    ------
    ConfigError
        Unknown modality or preset, a preset for a non-CT modality, both ``window`` and
        ``preset``, or a window width that is not positive.

    Examples
    --------
    >>> normalize_intensity(np.array([-1000.0, -160.0, 40.0, 240.0, 3000.0]), "ct")
    array([0. , 0. , 0.5, 1. , 1. ], dtype=float32)
    """
    mod = _canonical_modality(modality)
    if window is not None and preset is not None:
        raise ConfigError(
            "both a window and a window preset were given",
            fix="pass either --window LEVEL,WIDTH or --window-preset NAME, not both",
        )
    if preset is not None:
        if preset not in CT_PRESETS:
            raise ConfigError(
                f"unknown CT window preset {preset!r}",
                fix=f"use one of {', '.join(CT_PRESETS)}",
            )
        if mod != "ct":
            raise ConfigError(
                f"a CT window preset ({preset!r}) was given for modality {mod!r}",
                fix="drop the preset (MR is scaled by percentiles) or set the modality to ct",
            )
        window = CT_PRESETS[preset]
    elif window is None and mod == "ct":
        window = CT_PRESETS[DEFAULT_CT_PRESET]

    arr = np.asarray(volume, dtype=np.float32)
    if window is not None:
        level, width = (float(v) for v in window)
        if not width > 0:
            raise ConfigError(
                f"window width must be positive, got {width:g}",
                fix="pass a window as LEVEL,WIDTH with WIDTH > 0, e.g. 40,400",
            )
        lo, hi = level - width / 2, level + width / 2
    else:
        nonzero = arr[arr != 0]
        if nonzero.size == 0:
            return np.zeros(arr.shape, dtype=np.float32)
        lo, hi = (float(v) for v in np.percentile(nonzero, _PERCENTILES))
        if not hi > lo:  # constant non-zero voxels: nothing to scale, avoid 0/0
            return np.zeros(arr.shape, dtype=np.float32)
    out = (np.clip(arr, lo, hi) - lo) / (hi - lo)
    return out.astype(np.float32, copy=False)


@dataclass(frozen=True)
class SliceGeometry:
    """How one slice maps onto SAM's ``S x S`` input and back.

    The slice is resized so that its longest side is ``S`` (SAM's ``ResizeLongestSide``,
    rounding each side to the nearest integer), then padded at the bottom and right.

    Attributes
    ----------
    original : tuple of int
        ``(H, W)`` of the slice.
    image_size : int
        ``S``, the side of the square model input (1024 for SAM/MedSAM).
    resized : tuple of int
        ``(h, w)`` of the resized slice inside the input, ``max(h, w) == S``.
    scale : float
        ``S / max(H, W)``. Boxes are scaled per axis by ``w / W`` and ``h / H`` (as SAM's
        ``apply_boxes`` does), which equal ``scale`` up to the rounding of ``h`` and ``w``;
        with ``style="litemedsam"`` by ``scale`` itself (LiteMedSAM's ``resize_box_to_256``).
    style : str
        ``"sam"`` (low-resolution logits ``S/4``) or ``"litemedsam"`` (logits ``S``).
    """

    original: tuple[int, int]
    image_size: int
    resized: tuple[int, int]
    scale: float
    style: str = "sam"

    @classmethod
    def for_shape(cls, shape: tuple[int, int], image_size: int,
                  style: str = "sam") -> SliceGeometry:
        """Geometry of an ``(H, W)`` slice fed to a model of input side ``image_size``
        (``style``: see :data:`STYLES`).

        Raises
        ------
        ConfigError
            ``image_size`` is not a positive multiple of 4 (the low-resolution mask is
            ``S/4``).
        ValueError
            ``shape`` is not two positive sizes.
        """
        if int(image_size) != image_size or image_size < 4 or image_size % 4:
            raise ConfigError(
                f"image size must be a positive multiple of 4, got {image_size}",
                fix="use the model's input size, e.g. 1024 (SAM, MedSAM) or 256",
            )
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"a slice shape must be two positive sizes (H, W), got {shape}")
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, got {style!r}")
        H, W = int(shape[0]), int(shape[1])
        h, w = ResizeLongestSide.get_preprocess_shape(H, W, int(image_size))
        return cls((H, W), int(image_size), (int(h), int(w)), image_size / max(H, W), style)

    @property
    def low_res(self) -> int:
        """Side of the model's low-resolution mask logits: ``S / 4`` (SAM), ``S``
        (LiteMedSAM, whose embedding is ``S / 4``)."""
        return self.image_size if self.style == "litemedsam" else self.image_size // 4

    def box_to_input(self, box: np.ndarray | tuple[float, ...]) -> np.ndarray:
        """Map ``xyxy`` box(es) from slice pixels to input pixels.

        Coordinates are multiplied by ``w / W`` (x) and ``h / H`` (y), exactly as SAM's
        ``ResizeLongestSide.apply_boxes`` and MedSAM's training code do, so pretrained prompt
        encoders see the boxes they were trained with (SAM adds the half-pixel shift itself).

        Parameters
        ----------
        box : array_like, shape (4,) or (N, 4)
            ``(x0, y0, x1, y1)`` in slice pixel indices.

        Returns
        -------
        numpy.ndarray of float64, same shape as ``box``.
        """
        b = np.asarray(box, dtype=np.float64)
        if b.shape[-1:] != (4,):
            raise ValueError(f"a box needs 4 coordinates (x0, y0, x1, y1), got shape {b.shape}")
        if self.style == "litemedsam":
            return b * self.scale
        (H, W), (h, w) = self.original, self.resized
        return b * np.array([w / W, h / H, w / W, h / H])

    def box_to_slice(self, box: np.ndarray | tuple[float, ...]) -> np.ndarray:
        """Inverse of :meth:`box_to_input`: ``xyxy`` box(es) from input to slice pixels."""
        b = np.asarray(box, dtype=np.float64)
        if self.style == "litemedsam":
            return b / self.scale
        (H, W), (h, w) = self.original, self.resized
        return b / np.array([w / W, h / H, w / W, h / H])

    def mask_to_input(self, mask: np.ndarray) -> np.ndarray:
        """Encode a binary slice mask as a SAM mask prompt (low-resolution logits).

        The mask is resized to ``(h, w)``, zero-padded to ``S x S`` and area-averaged down to
        ``S/4 x S/4``, giving the fraction ``p`` of each low-resolution cell inside the mask.
        It is encoded as ``MASK_PROMPT_LOGIT * (2 p - 1)``: ``+8`` inside, ``-8`` outside and
        the padding, a linear ramp across edges whose zero crossing is the mask boundary, so
        :meth:`logits_to_slice` followed by ``> 0`` recovers the mask.

        Parameters
        ----------
        mask : numpy.ndarray of bool, shape (H, W)

        Returns
        -------
        numpy.ndarray of float32, shape (S/4, S/4)
        """
        m = np.asarray(mask)
        if m.shape != self.original:
            raise ValueError(f"mask shape {m.shape} differs from the slice shape {self.original}")
        t = torch.from_numpy(m.astype(np.float32))[None, None]
        t = _resize(t, self.resized)
        S = self.image_size
        t = F.pad(t, (0, S - self.resized[1], 0, S - self.resized[0]))
        p = F.interpolate(t, size=(self.low_res, self.low_res), mode="area")
        logits = MASK_PROMPT_LOGIT * (2.0 * p.clamp(0.0, 1.0) - 1.0)
        return logits[0, 0].numpy().astype(np.float32, copy=False)

    def logits_to_slice(self, logits: np.ndarray | torch.Tensor) -> np.ndarray:
        """Map the model's low-resolution logits back onto the slice.

        As ``Sam.postprocess_masks``: bilinear upsampling to ``S x S``, crop of the padding to
        ``(h, w)``, bilinear resize to ``(H, W)``. Threshold the result at 0 for a mask.

        Parameters
        ----------
        logits : numpy.ndarray or torch.Tensor, shape (S/4, S/4), (1, S/4, S/4) or
            (1, 1, S/4, S/4)
            Any device; the interpolation runs where the tensor is.

        Returns
        -------
        numpy.ndarray of float32, shape (H, W)
        """
        t = torch.as_tensor(logits).detach()
        while t.ndim > 2 and t.shape[0] == 1:
            t = t[0]
        if t.shape != (self.low_res, self.low_res):
            raise ValueError(
                f"logits of shape {tuple(torch.as_tensor(logits).shape)} do not match the "
                f"low-resolution mask size {self.low_res} x {self.low_res}"
            )
        t = t.float()[None, None]
        S = self.image_size
        if self.low_res != S:
            t = F.interpolate(t, size=(S, S), mode="bilinear", align_corners=False)
        t = t[..., : self.resized[0], : self.resized[1]]
        t = F.interpolate(t, size=self.original, mode="bilinear", align_corners=False)
        return t[0, 0].cpu().numpy().astype(np.float32, copy=False)


def _resize(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of an ``(N, C, H, W)`` tensor; antialiased so that downscaling a
    large slice does not alias (SAM resizes with PIL, which also filters)."""
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    return F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)


def slice_to_input(image01: np.ndarray, image_size: int,
                   style: str = "sam") -> tuple[torch.Tensor, SliceGeometry]:
    """Turn a slice in ``[0, 1]`` into SAM's (or LiteMedSAM's) padded ``(3, S, S)`` input.

    Parameters
    ----------
    image01 : numpy.ndarray, shape (H, W) or (H, W, 3)
        Grey slice (e.g. from :func:`normalize_intensity`) or RGB image (2-D PNG/JPG inputs),
        values in ``[0, 1]``.
    image_size : int
        ``S``, the model's input side.
    style : str
        ``"sam"`` or ``"litemedsam"`` (see the module docstring).

    Returns
    -------
    image : torch.Tensor of float32, shape (3, S, S)
        ``(255 * x - PIXEL_MEAN) / PIXEL_STD`` on the resized slice (``"sam"``) or the resized
        slice min-max scaled to ``[0, 1]`` (``"litemedsam"``), zeros in the padding (bottom
        rows and right columns), on the CPU.
    geometry : SliceGeometry

    Raises
    ------
    ValueError
        Wrong shape, non-finite values or values outside ``[0, 1]``.
    """
    arr = np.asarray(image01, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[2] == 3:
        chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    elif arr.ndim == 2:
        chw = np.broadcast_to(arr, (3, *arr.shape))  # SAM expects RGB: replicate the grey
    else:
        raise ValueError(f"a slice must be (H, W) or (H, W, 3), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("the slice has NaN or infinite values")
    if arr.size and (arr.min() < -1e-4 or arr.max() > 1 + 1e-4):
        raise ValueError(
            f"slice values must lie in [0, 1], got {arr.min():g}..{arr.max():g}; "
            "normalise it first (normalize_intensity)"
        )
    geom = SliceGeometry.for_shape(arr.shape[:2], image_size, style)
    S = geom.image_size
    if style == "litemedsam":
        t = _resize(torch.from_numpy(np.clip(chw, 0.0, 1.0).astype(np.float32))[None],
                    geom.resized)
        lo, hi = t.min(), t.max()
        t = (t - lo) / (hi - lo).clamp_min(1e-8)
        t = F.pad(t, (0, S - geom.resized[1], 0, S - geom.resized[0]))
        return t[0].contiguous(), geom
    t = torch.from_numpy(np.clip(chw, 0.0, 1.0) * 255.0)[None]
    t = _resize(t, geom.resized)
    mean = torch.tensor(PIXEL_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, dtype=torch.float32).view(1, 3, 1, 1)
    t = (t - mean) / std
    t = F.pad(t, (0, S - geom.resized[1], 0, S - geom.resized[0]))
    return t[0].contiguous(), geom

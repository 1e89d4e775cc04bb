"""Synthetic CT/MR volumes with two organ labels, for testing and demonstrating DB-SAM.

Each phantom is a textured body (an elliptic cylinder in air) holding two separate organs:
label 1, a large ellipsoid, and label 2, a smaller one, with random sizes, positions and 3-D
orientations. Both span a contiguous range of slices but never the whole volume, so that box
propagation and "object absent" slices are exercised.

CT intensities are Hounsfield units: air -1000, body soft tissue around -20 HU (a fat/muscle
texture spanning roughly -100..60 HU), organ 1 around +60 HU and organ 2 around +150 HU. They
are visible in MedSAM's 40/400 window, but organ 1 overlaps the muscle-like texture, and noise,
partial-volume blur and a smooth bias field keep plain thresholding from being perfect. MR
phantoms use positive arbitrary units with a multiplicative bias field and Rician noise.

The files are stored like an LPS-oriented scan (voxel axes pointing left, posterior, superior;
0.8 x 0.8 x 2.5 mm voxels), i.e. *not* RAS, so that orientation handling is exercised.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter, zoom

from medcl.io.errors import ConfigError
from medcl.io.nifti import Volume, write_volume

__all__ = ["LABELS", "SPACING_MM", "phantom_affine", "phantom_volume", "write_phantoms"]

LABELS: dict[int, str] = {1: "large organ", 2: "small organ"}
"""Label codes of the phantoms (0 is background)."""

SPACING_MM: tuple[float, float, float] = (0.8, 0.8, 2.5)
"""Voxel size along the three voxel axes."""

_MODALITIES = ("ct", "mr")
# Mean intensities before texture, blur, bias and noise: (outside, body, organ 1, organ 2).
# Organ 2 is set 10 HU above its nominal +150 HU: it is small, so partial-volume blur pulls its
# median down by about that much.
_CT_HU = (-1000.0, -20.0, 60.0, 160.0)
_MR_AU = (0.0, 300.0, 520.0, 800.0)
_MAX_TRIES = 200


def phantom_affine(shape: tuple[int, int, int]) -> np.ndarray:
    """Voxel-to-world (RAS+ mm) matrix of an LPS-stored volume of ``shape``, centred at 0.

    Axis 0 runs towards the patient's left and axis 1 towards posterior (both flipped with
    respect to RAS), axis 2 towards superior, with :data:`SPACING_MM` voxels.
    """
    m = np.diag([-SPACING_MM[0], -SPACING_MM[1], SPACING_MM[2]])
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = -m @ centre
    return aff


def _rotation(rng: np.random.Generator) -> np.ndarray:
    """A random orientation: any in-plane angle, tilted by up to 20 degrees out of plane."""
    a = rng.uniform(0.0, math.pi)
    t = math.radians(rng.uniform(-20.0, 20.0))
    rz = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1]])
    rx = np.array([[1.0, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    return rz @ rx


def _ellipsoid(
    grid: tuple[np.ndarray, ...], centre: np.ndarray, semi: np.ndarray, rot: np.ndarray
) -> np.ndarray:
    """Boolean ellipsoid on a grid of mm coordinates (semi-axes along the columns of ``rot``)."""
    d = [g - c for g, c in zip(grid, centre, strict=True)]
    r2 = 0.0
    for k in range(3):
        u = rot[0, k] * d[0] + rot[1, k] * d[1] + rot[2, k] * d[2]
        r2 = r2 + (u / semi[k]) ** 2
    return r2 <= 1.0


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, ...], sigma: tuple[float, ...]
) -> np.ndarray:
    """Gaussian-filtered white noise with zero mean and unit standard deviation."""
    out = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    std = out.std()
    return (out - out.mean()) / (std if std > 0 else 1.0)


def _bias_field(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A smooth field with zero mean and unit std: cubic upsampling of a 4 x 4 x 3 random grid
    (a Gaussian filter of that width would cost far more than the rest of the phantom)."""
    coarse = rng.standard_normal((4, 4, 3))
    out = zoom(coarse, [n / c for n, c in zip(shape, coarse.shape, strict=True)], order=3)
    out = out[: shape[0], : shape[1], : shape[2]]  # zoom rounds the output shape
    std = out.std()
    return (out - out.mean()) / (std if std > 0 else 1.0)


def _organs(
    rng: np.random.Generator, shape: tuple[int, int, int], grid: tuple[np.ndarray, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body mask and the two organ masks, resampled until the organs are separate, inside the
    body and away from the first and last slices."""
    fov = np.asarray(shape) * np.asarray(SPACING_MM)
    body = (grid[0] / (0.46 * fov[0])) ** 2 + (grid[1] / (0.40 * fov[1])) ** 2 <= 1.0
    body = np.broadcast_to(body, shape)
    for _ in range(_MAX_TRIES):
        rot1, rot2 = _rotation(rng), _rotation(rng)
        semi1 = np.array([0.17, 0.13, 0.28]) * fov * rng.uniform(0.8, 1.15, 3)
        semi2 = np.array([0.08, 0.07, 0.18]) * fov * rng.uniform(0.8, 1.2, 3)
        c1 = rng.uniform(-1, 1, 3) * np.array([0.16, 0.12, 0.12]) * fov
        c2 = rng.uniform(-1, 1, 3) * np.array([0.26, 0.22, 0.18]) * fov
        o1 = _ellipsoid(grid, c1, semi1, rot1)
        o2 = _ellipsoid(grid, c2, semi2, rot2)
        z1 = np.flatnonzero(o1.any(axis=(0, 1)))
        z2 = np.flatnonzero(o2.any(axis=(0, 1)))
        if z1.size == 0 or z2.size == 0:
            continue
        if min(z1[0], z2[0]) == 0 or max(z1[-1], z2[-1]) == shape[2] - 1:
            continue  # the object must end inside the volume
        if (o1 & o2).any() or (o1 & ~body).any() or (o2 & ~body).any():
            continue
        # Require a gap of a few voxels so the labels neither touch nor blur into each other.
        if (gaussian_filter(o1.astype(np.float32), (2.0, 2.0, 0.8)) > 0.02)[o2].any():
            continue
        return body, o1, o2
    raise RuntimeError(f"could not place two separate organs in a volume of shape {shape}")


def phantom_volume(
    rng: np.random.Generator,
    shape: tuple[int, int, int] = (96, 96, 24),
    modality: str = "ct",
) -> tuple[np.ndarray, np.ndarray]:
    """Make one phantom in memory.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of all randomness (same state, same phantom).
    shape : tuple of int, default (96, 96, 24)
        Voxels along the three axes; at least ``(32, 32, 8)``.
    modality : {"ct", "mr"}, default "ct"

    Returns
    -------
    image : numpy.ndarray of float32, shape ``shape``
        Hounsfield units (CT) or non-negative arbitrary units (MR).
    labels : numpy.ndarray of uint8, shape ``shape``
        0 background, 1 large organ, 2 small organ (:data:`LABELS`).
    """
    mod = str(modality).lower()
    if mod not in _MODALITIES:
        raise ConfigError(
            f"unknown phantom modality {modality!r}", fix=f"use one of {', '.join(_MODALITIES)}"
        )
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    if len(shape) != 3 or shape[0] < 32 or shape[1] < 32 or shape[2] < 8:
        raise ValueError(f"shape must be 3 sizes of at least (32, 32, 8), got {shape}")
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, SPACING_MM, strict=True)]
    grid = tuple(np.meshgrid(*axes, indexing="ij", sparse=True))
    body, o1, o2 = _organs(rng, shape, grid)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[o1] = 1
    labels[o2] = 2

    outside, tissue, mean1, mean2 = _CT_HU if mod == "ct" else _MR_AU
    # Sigmas in voxels: texture a few mm in-plane, about one slice through-plane.
    texture = _smooth_noise(rng, shape, (2.5, 2.5, 0.6))
    grain = _smooth_noise(rng, shape, (1.2, 1.2, 0.4))
    # The coarse texture stays outside the organs: over a whole organ it would shift the
    # organ's mean by tens of HU and blur the contrast the labels stand for.
    tissue_only = body & (labels == 0)
    img = np.full(shape, outside, dtype=np.float64)
    img[body] = tissue
    if mod == "ct":
        img += np.where(tissue_only, 40.0 * texture, 0.0)  # fat/muscle mix, about -100..60 HU
        img += np.where(o1, mean1 - tissue + 10.0 * grain, 0.0)
        img += np.where(o2, mean2 - tissue + 15.0 * grain, 0.0)
    else:
        img += np.where(tissue_only, 60.0 * texture, 0.0)
        img += np.where(o1, mean1 - tissue + 30.0 * grain, 0.0)
        img += np.where(o2, mean2 - tissue + 40.0 * grain, 0.0)
    img = gaussian_filter(img, (0.6, 0.6, 0.3))  # partial-volume blur at edges

    field = np.exp(_bias_field(rng, shape))
    if mod == "ct":
        # CT has no true bias field, but beam hardening and scatter shift HU smoothly; model it
        # as a multiplicative change of attenuation (HU + 1000) of about +-1 % (+-10 HU).
        img = (img + 1000.0) * field**0.01 - 1000.0
        img += 12.0 * rng.standard_normal(shape)
        img = np.clip(img, -1024.0, None)
    else:
        img = np.clip(img * field**0.08, 0.0, None)  # about +-8 % intensity inhomogeneity
        sd = 15.0  # Rician noise: magnitude of a complex Gaussian keeps values positive
        img = np.hypot(img + sd * rng.standard_normal(shape), sd * rng.standard_normal(shape))
    return img.astype(np.float32), labels


def write_phantoms(
    out: str | os.PathLike[str],
    n: int = 8,
    *,
    seed: int = 0,
    shape: tuple[int, int, int] = (96, 96, 24),
    modality: str = "ct",
) -> tuple[Path, Path]:
    """Write ``n`` phantoms as nnU-Net/MSD-style image and label pairs.

    Parameters
    ----------
    out : str or os.PathLike
        Folder receiving ``images/case_000.nii.gz``, ... and ``labels/case_000.nii.gz``, ...
    n : int, default 8
        Number of cases, >= 1.
    seed : int, default 0
        Case ``i`` is drawn from ``numpy.random.default_rng([seed, i])``: the same seed gives
        the same files, and cases do not depend on ``n``.
    shape : tuple of int, default (96, 96, 24)
    modality : {"ct", "mr"}, default "ct"

    Returns
    -------
    images_dir, labels_dir : pathlib.Path
        Images are float32 and labels uint8, with the LPS-like affine of
        :func:`phantom_affine`; each file is written atomically
        (:func:`~medcl.io.nifti.write_volume`).

    Raises
    ------
    ConfigError
        ``n < 1``, an unknown modality, or ``out`` already holds images/ or labels/ files
        (a second set would mix with the first); nothing is written then.
    """
    if n < 1:
        raise ConfigError(f"the number of phantoms must be at least 1, got {n}",
                          fix="pass --n 1 or more")
    if str(modality).lower() not in _MODALITIES:
        raise ConfigError(f"unknown phantom modality {modality!r}",
                          fix=f"use one of {', '.join(_MODALITIES)}")
    root = Path(out)
    images, labels_dir = root / "images", root / "labels"
    if any(d.is_dir() and any(d.iterdir()) for d in (images, labels_dir)):
        raise ConfigError("already holds phantom cases (images/ or labels/ not empty)", path=root,
                          fix="choose an empty folder for --out")
    images.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    affine = phantom_affine(tuple(int(s) for s in shape))  # type: ignore[arg-type]
    for i in range(n):
        img, lab = phantom_volume(np.random.default_rng([seed, i]), shape, modality)
        like = Volume.from_array(img, affine)
        name = f"case_{i:03d}.nii.gz"
        write_volume(images / name, img, like, dtype=np.float32)
        write_volume(labels_dir / name, lab, like, dtype=np.uint8)
    return images, labels_dir

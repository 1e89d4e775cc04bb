"""Synthetic axial T2 prostate phantoms with PI-RADS v2 zone labels, for tests and demos.

Each phantom is an ellipsoidal gland of random size and pose (in-plane rotation, translation)
in a textured pelvis, split into the four zones of Meyer et al. (ISBI 2019) and Das et al.
(arXiv:2309.12970): peripheral zone (PZ, 1), transition zone (TZ, 2), distal prostatic
urethra (DPU, 3) and anterior fibromuscular stroma (AFS, 4); 0 is background.

Geometry (RAS+: voxel axis 0 right, 1 anterior, 2 superior; z is S-I):

- TZ: a central ellipsoid, slightly anterior and towards the base, whose size grows with a
  random "age" factor (benign prostatic hyperplasia enlarges the TZ with age);
- AFS: the anterior band of the gland in front of the TZ;
- PZ: the rest of the gland, i.e. the posterior-lateral crescent (shell) that dominates the apex;
- urethra: a tube 3.5-5 mm across along S-I through the gland; its apical third (the lowest
  third of the gland's z extent) is the DPU (a few hundred voxels at 0.5 x 0.5 x 3 mm), the
  proximal part stays TZ.

Intensities mimic T2: PZ hyperintense, TZ intermediate and heterogeneous (nodular texture),
AFS dark, DPU a "target": a dark muscular wall (the urethral sphincter, hypointense on T2)
around a brighter lumen, textured background; a smooth multiplicative bias field and Rician
noise (magnitude of a complex Gaussian) are applied. Only numpy is used; randomness goes
through ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from medcl.io.nifti import Volume, write_volume

from .zones import ZONE_CODE, ZONES

__all__ = ["ZONES", "make_phantom", "write_phantoms"]

_PZ, _TZ, _DPU, _AFS = ZONE_CODE["PZ"], ZONE_CODE["TZ"], ZONE_CODE["DPU"], ZONE_CODE["AFS"]
# Mean T2-like intensities (arbitrary units, before bias field and noise).
_MEAN = {0: 0.35, _PZ: 0.85, _TZ: 0.50, _DPU: 0.40, _AFS: 0.15}
_LUMEN = 0.75  # the DPU's central lumen (inner 40 % of its radius)


def _smooth_noise(
    rng: np.random.Generator, shape: tuple[int, int, int], sigma_vox: tuple[float, ...]
) -> np.ndarray:
    """Gaussian-filtered white noise (via FFT, periodic), normalised to zero mean, unit std."""
    noise = rng.standard_normal(shape)
    spec = np.fft.rfftn(noise)
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    expo = sum((2 * math.pi * s * g) ** 2 / 2 for s, g in zip(sigma_vox, grids, strict=True))
    out = np.fft.irfftn(spec * np.exp(-expo), s=shape)
    std = out.std()
    return (out - out.mean()) / (std if std > 0 else 1.0)


def _affine(spacing: tuple[float, float, float], shape: tuple[int, int, int], oblique_deg: float):
    """RAS+ affine with the given spacing, centred on the volume, tilted about R-L if asked."""
    a = math.radians(oblique_deg)
    rot = np.array(
        [[1.0, 0.0, 0.0], [0.0, math.cos(a), -math.sin(a)], [0.0, math.sin(a), math.cos(a)]]
    )
    m = rot @ np.diag(spacing)
    centre = (np.asarray(shape, dtype=np.float64) - 1) / 2
    aff = np.eye(4)
    aff[:3, :3] = m
    aff[:3, 3] = -m @ centre
    return aff


def make_phantom(
    seed: int,
    *,
    shape: tuple[int, int, int] = (96, 96, 24),
    spacing: tuple[float, float, float] = (0.5, 0.5, 3.0),
    oblique_deg: float = 0.0,
    noise: float = 0.03,
    bias: float = 0.15,
    return_gland: bool = False,
) -> tuple[np.ndarray, ...]:
    """Make one synthetic axial T2 volume with its zone labels.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same phantom.
    shape : tuple of int, default (96, 96, 24)
        Voxels along (R-L, A-P, S-I); at least 16 x 16 x 6.
    spacing : tuple of float, default (0.5, 0.5, 3.0)
        Voxel size in mm (the axial prostate protocol of Meyer et al. 2019).
    oblique_deg : float, default 0
        Tilt of the slices about the R-L axis, in degrees (only the affine changes).
    noise : float, default 0.03
        Standard deviation of each Gaussian component of the Rician noise (relative to a
        PZ intensity of about 0.85).
    bias : float, default 0.15
        Strength of the smooth multiplicative bias field (log-amplitude std).
    return_gland : bool, default False
        Also return the gland mask (bool, equal to ``labels > 0``).

    Returns
    -------
    t2 : numpy.ndarray of float32, shape ``shape``
        Non-negative intensities, scaled to about 0-1000.
    labels : numpy.ndarray of uint8, shape ``shape``
        Codes of :data:`ZONES` (0 background).
    affine : numpy.ndarray, shape (4, 4)
        RAS+ voxel-to-world matrix.
    gland : numpy.ndarray of bool, shape ``shape``
        Only when ``return_gland`` is true.
    """
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    spacing = tuple(float(s) for s in spacing)  # type: ignore[assignment]
    if len(shape) != 3 or shape[0] < 16 or shape[1] < 16 or shape[2] < 6:
        raise ValueError(f"shape must be 3 sizes of at least (16, 16, 6), got {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive sizes in mm, got {spacing}")
    rng = np.random.default_rng(seed)
    fov = np.asarray(shape) * np.asarray(spacing)

    # Pose and size of the gland (semi-axes relative to the field of view).
    semi = np.array([0.30, 0.26, 0.30]) * fov * rng.uniform(0.85, 1.1, 3)
    semi[2] = min(semi[2], 0.36 * fov[2])
    centre = (rng.uniform(-0.06, 0.06, 3) * fov) * np.array([1.0, 1.0, 0.5])
    theta = math.radians(rng.uniform(-12.0, 12.0))
    age = rng.uniform(0.0, 1.0)

    # Voxel centres in mm, relative to the volume centre, then into the gland frame.
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    c, s = math.cos(theta), math.sin(theta)
    u = (c * dx + s * dy) / semi[0]
    v = (-s * dx + c * dy) / semi[1]
    w = np.broadcast_to(dz / semi[2], shape)
    r2 = u**2 + v**2 + w**2
    gland = r2 <= 1.0

    # Transition zone: central, anterior-basal ellipsoid growing with age.
    tz_c = (0.0, 0.05 + 0.05 * age, 0.15)
    tz_r = (0.50 + 0.20 * age, 0.38 + 0.17 * age, 0.60 + 0.15 * age)
    tz = (
        ((u - tz_c[0]) / tz_r[0]) ** 2
        + ((v - tz_c[1]) / tz_r[1]) ** 2
        + ((w - tz_c[2]) / tz_r[2]) ** 2
    ) <= 1.0
    labels = np.zeros(shape, dtype=np.uint8)
    labels[gland] = _PZ
    anterior = (v >= tz_c[1] + 0.85 * tz_r[1]) & (np.abs(u) < 0.6) & (np.abs(w - tz_c[2]) < tz_r[2])
    labels[gland & anterior] = _AFS
    labels[gland & tz] = _TZ

    # Urethra: a tube along S-I, 3.5-5 mm across (the distal urethra with its sphincter muscle
    # as outlined in Meyer et al.'s labels); a 1-2 mm lumen would be a handful of voxels per
    # slice at 0.5 mm, too few to learn or score. Its apical third is the DPU.
    urethra_mm = max(rng.uniform(1.75, 2.5), 2.2 * spacing[0])
    ux = np.asarray(dx) * c + np.asarray(dy) * s
    uy = (-np.asarray(dx) * s + np.asarray(dy) * c) - tz_c[1] * semi[1]
    tube = np.broadcast_to((ux**2 + uy**2) <= urethra_mm**2, shape)
    lumen = np.broadcast_to((ux**2 + uy**2) <= (0.4 * urethra_mm) ** 2, shape)
    zs = np.flatnonzero(gland.any(axis=(0, 1)))
    if zs.size == 0:  # cannot happen with the size limits above; guard anyway
        raise RuntimeError(f"phantom {seed}: the gland fell outside the volume")
    extent = zs[-1] - zs[0] + 1
    apical = np.zeros(shape[2], dtype=bool)
    apical[zs[0] : zs[0] + max(1, extent // 3)] = True
    labels[gland & tube & apical[None, None, :]] = _DPU
    labels[gland & tube & ~apical[None, None, :] & (labels != _PZ)] = _TZ

    # Intensities: zone means, textures, partial-volume blur, bias field, Rician noise.
    img = np.empty(shape, dtype=np.float64)
    for code, mean in _MEAN.items():
        img[labels == code] = mean
    img[(labels == _DPU) & lumen] = _LUMEN
    sig_vox = lambda mm: tuple(mm / sp for sp in spacing)  # noqa: E731
    texture = _smooth_noise(rng, shape, sig_vox(2.0))
    nodules = _smooth_noise(rng, shape, sig_vox(1.5))
    img += np.where(labels == 0, 0.08 * texture, 0.0)
    img += np.where(labels == _TZ, 0.10 * nodules, 0.0)
    img += np.where(labels == _PZ, 0.03 * texture, 0.0)
    capsule = gland & (r2 >= 0.88)
    img[capsule & (labels == _PZ)] *= 0.85
    spec = np.fft.rfftn(img)
    freqs = [np.fft.fftfreq(n) for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    blur = (0.6, 0.6, 0.3)
    expo = sum((2 * math.pi * b * g) ** 2 / 2 for b, g in zip(blur, grids, strict=True))
    img = np.fft.irfftn(spec * np.exp(-expo), s=shape)
    field = np.exp(bias * _smooth_noise(rng, shape, tuple(0.35 * n for n in shape)))
    img = np.clip(img * field, 0.0, None)
    re = img + noise * rng.standard_normal(shape)
    im = noise * rng.standard_normal(shape)
    t2 = (np.sqrt(re**2 + im**2) * 1000.0).astype(np.float32)

    aff = _affine(spacing, shape, oblique_deg)
    if return_gland:
        return t2, labels, aff, gland
    return t2, labels, aff


def write_phantoms(
    out_dir: str | os.PathLike[str], n: int = 40, seed: int = 0, **kw: object
) -> tuple[Path, Path]:
    """Write ``n`` phantoms as nnU-Net-style image/label pairs.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Folder receiving ``images/case_000.nii.gz`` ... and ``labels/case_000.nii.gz`` ...
    n : int, default 40
        Number of cases.
    seed : int, default 0
        Case ``i`` uses seed ``seed + i``.
    **kw
        Passed to :func:`make_phantom` (``shape``, ``spacing``, ``oblique_deg``, ...).

    Returns
    -------
    images_dir, labels_dir : pathlib.Path
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    kw.pop("return_gland", None)
    out = Path(out_dir)
    images, labels_dir = out / "images", out / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        t2, lab, aff = make_phantom(seed + i, **kw)  # type: ignore[arg-type]
        like = Volume.from_array(t2, aff)
        name = f"case_{i:03d}.nii.gz"
        write_volume(images / name, t2, like, dtype=np.float32)
        write_volume(labels_dir / name, lab, like, dtype=np.uint8)
    return images, labels_dir

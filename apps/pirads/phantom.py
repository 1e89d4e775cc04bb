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

Two families (``family=`` of :func:`make_phantom` and :func:`write_phantoms`): ``"easy"``, the
phantoms above, on which every method scores Dice 0.93-0.98, and ``"hard"`` (:data:`HARD`), a
held-out family for checking what carries over: other gland shapes (pear-shaped, curved along
S-I, asymmetric lobes), the gland off-centre in a larger field of view at another voxel size,
a stronger bias field and noise, partial volume across the 3 mm slices and oblique slices
(tilted in the voxels and the affine alike). ``benchmarks/check_pirads_hard.py`` trains on the
easy family and scores on the hard one.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from medcl.io.nifti import Volume, write_volume

from .zones import ZONE_CODE, ZONES

__all__ = ["FAMILIES", "HARD", "ZONES", "make_phantom", "write_phantoms"]

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


#: Settings of the held-out "hard" family (see :func:`make_phantom`); the easy family's are
#: the keyword defaults of :func:`make_phantom`.
HARD: dict[str, object] = {
    "shape": (128, 128, 26),
    "spacing": (0.55, 0.55, 3.0),
    "noise": 0.07,
    "bias": 0.40,
    "supersample": 3,  # partial volume: 3 sub-slices of 1 mm averaged into each 3 mm slice
    "offcentre_mm": (6.0, 12.0),  # in-plane distance of the gland centre from the FOV centre
    "tilt_deg": (8.0, 20.0),  # oblique acquisition: |tilt| of the slices about R-L
    "rotate_deg": 20.0,  # in-plane rotation, +-
    "taper": (0.10, 0.30),  # pear shape: in-plane size grows by this fraction towards the base
    "bend": 0.20,  # S-I curvature: in-plane drift of the axis, fraction of the semi-axes, +-
    "asymmetry": 0.15,  # one lobe larger than the other by up to this fraction
}

#: Phantom families: ``"easy"`` (training, tests, demo) and ``"hard"`` (held out).
FAMILIES: tuple[str, ...] = ("easy", "hard")


def _easy_geometry(rng, shape, spacing, axes):
    """The easy family's gland frame: an ellipsoid of random size, in-plane pose and age."""
    fov = np.asarray(shape) * np.asarray(spacing)
    semi = np.array([0.30, 0.26, 0.30]) * fov * rng.uniform(0.85, 1.1, 3)
    semi[2] = min(semi[2], 0.36 * fov[2])
    centre = (rng.uniform(-0.06, 0.06, 3) * fov) * np.array([1.0, 1.0, 0.5])
    theta = math.radians(rng.uniform(-12.0, 12.0))
    age = rng.uniform(0.0, 1.0)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
    c, s = math.cos(theta), math.sin(theta)
    u = (c * dx + s * dy) / semi[0]
    v = (-s * dx + c * dy) / semi[1]
    w = np.broadcast_to(dz / semi[2], shape)
    # the urethra's axis, in mm, in the rotated frame
    ux = np.asarray(dx) * c + np.asarray(dy) * s
    uy = -np.asarray(dx) * s + np.asarray(dy) * c
    return u, v, w, ux, uy, semi[1], age


def _hard_geometry(rng, shape, spacing, axes, tilt_deg):
    """The hard family's gland frame: a pear-shaped, curved, asymmetric gland, off-centre,
    upright in the world but tilted in the voxel grid by ``tilt_deg`` (the affine carries the
    same tilt, so the acquisition is oblique)."""
    fov = np.asarray(shape) * np.asarray(spacing)
    semi = np.array([14.4, 12.5, 21.6]) * rng.uniform(0.8, 1.1, 3)  # mm, the easy sizes
    semi[2] = min(semi[2], 0.36 * fov[2])
    taper = rng.uniform(*HARD["taper"])  # type: ignore[misc]
    bend_x, bend_y = rng.uniform(-1.0, 1.0, 2) * float(HARD["bend"])  # type: ignore[arg-type]
    asym = rng.uniform(-1.0, 1.0) * float(HARD["asymmetry"])  # type: ignore[arg-type]
    theta = math.radians(rng.uniform(-1.0, 1.0) * float(HARD["rotate_deg"]))  # type: ignore[arg-type]
    age = rng.uniform(0.0, 1.0)
    direction = rng.uniform(0.0, 2 * math.pi)
    offset = rng.uniform(*HARD["offcentre_mm"])  # type: ignore[misc]
    z_shift = rng.uniform(-0.05, 0.05) * fov[2]
    a = math.radians(tilt_deg)
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    c, s = math.cos(theta), math.sin(theta)
    for _ in range(20):  # move the gland towards the centre until it lies inside the volume
        centre = np.array([offset * math.cos(direction), offset * math.sin(direction), z_shift])
        dx, dy, dz = x - centre[0], y - centre[1], z - centre[2]
        wy = math.cos(a) * dy - math.sin(a) * dz  # world frame (the affine's tilt)
        wz = math.sin(a) * dy + math.cos(a) * dz
        w = np.broadcast_to(wz / semi[2], shape)
        scale = 1.0 + taper * w  # pear: wider at the base (w > 0)
        px = c * dx + s * wy - bend_x * semi[0] * w  # the axis drifts sideways ...
        py = -s * dx + c * wy - bend_y * semi[1] * w**2  # ... and bows A-P
        sx = semi[0] * scale * np.where(px > 0, 1.0 + asym, 1.0 - asym)
        u, v = px / sx, py / (semi[1] * scale)
        gland = u**2 + v**2 + w**2 <= 1.0
        edge = (gland[[0, -1]].any() or gland[:, [0, -1]].any() or gland[..., [0, -1]].any())
        if not edge:
            break
        offset *= 0.8
        z_shift *= 0.8
    return u, v, w, px, py, semi[1] * scale, age


def make_phantom(
    seed: int,
    *,
    shape: tuple[int, int, int] | None = None,
    spacing: tuple[float, float, float] | None = None,
    oblique_deg: float | None = None,
    noise: float | None = None,
    bias: float | None = None,
    family: str = "easy",
    return_gland: bool = False,
) -> tuple[np.ndarray, ...]:
    """Make one synthetic axial T2 volume with its zone labels.

    Two families share the anatomy and the intensity model of the module docstring:

    - ``"easy"`` (the default; training, tests and the demo): an ellipsoidal gland near the
      centre of a 96 x 96 x 24 volume at 0.5 x 0.5 x 3 mm, noise 0.03, bias 0.15, slices
      sampled at their centres, an axial acquisition unless ``oblique_deg`` tilts the affine
      (only the affine: the voxels stay those of an axial scan);
    - ``"hard"`` (held out; :data:`HARD`): other gland shapes (pear-shaped, i.e. narrower at the
      apex, curved along S-I and with one lobe up to 15 % larger), the gland off-centre (6-12
      mm in-plane) in a larger field of view (128 x 128 x 26 at 0.55 x 0.55 x 3 mm, so the
      data must also be resampled), stronger bias field (0.40) and noise (0.07), partial volume
      across the 3 mm slices (the image is rendered on 1 mm sub-slices and each slice is their
      mean; labels are those of the slice centre, as a reader draws them) and an oblique
      acquisition: the slices are tilted by 8-20 degrees (random sign) about R-L, in the voxels
      (the gland lies tilted in the grid) and in the affine alike, so the gland is upright in
      world coordinates. The DPU is the apical third of the urethra along the gland's own axis.
      Its random stream differs from the easy family's, so no seed repeats an easy phantom.

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same phantom.
    shape : tuple of int, optional
        Voxels along (R-L, A-P, S-I); at least 16 x 16 x 6. Default: the family's.
    spacing : tuple of float, optional
        Voxel size in mm. Default: the family's (easy: 0.5 x 0.5 x 3.0, the axial prostate
        protocol of Meyer et al. 2019).
    oblique_deg : float, optional
        Tilt of the slices about the R-L axis, in degrees. Easy family: only the affine changes
        (default 0). Hard family: the anatomy is tilted in the voxels too (default: drawn).
    noise : float, optional
        Standard deviation of each Gaussian component of the Rician noise (relative to a
        PZ intensity of about 0.85). Default: the family's (0.03 / 0.07).
    bias : float, optional
        Strength of the smooth multiplicative bias field (log-amplitude std). Default: the
        family's (0.15 / 0.40).
    family : {"easy", "hard"}, default "easy"
        Which family (see above).
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
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    hard = family == "hard"
    shape = tuple(int(s) for s in (shape or (HARD["shape"] if hard else (96, 96, 24))))  # type: ignore[arg-type]
    spacing = tuple(float(s) for s in (spacing or (HARD["spacing"] if hard else (0.5, 0.5, 3.0))))  # type: ignore[arg-type]
    noise = float(noise if noise is not None else (HARD["noise"] if hard else 0.03))  # type: ignore[arg-type]
    bias = float(bias if bias is not None else (HARD["bias"] if hard else 0.15))  # type: ignore[arg-type]
    if len(shape) != 3 or shape[0] < 16 or shape[1] < 16 or shape[2] < 6:
        raise ValueError(f"shape must be 3 sizes of at least (16, 16, 6), got {shape}")
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ValueError(f"spacing must be 3 positive sizes in mm, got {spacing}")
    # the hard family's stream is keyed apart from the easy one's: seed 0 is another phantom
    rng = np.random.default_rng([seed, 1]) if hard else np.random.default_rng(seed)
    k = int(HARD["supersample"]) if hard else 1  # type: ignore[call-overload]
    fine = (shape[0], shape[1], shape[2] * k)
    fine_spacing = (spacing[0], spacing[1], spacing[2] / k)
    # Voxel centres in mm relative to the volume centre; with k > 1 the k sub-slices of each
    # slice sit at its centre +- (slice thickness / k)
    axes = [(np.arange(n) - (n - 1) / 2) * sp for n, sp in zip(fine, fine_spacing, strict=True)]
    if hard:
        tilt = oblique_deg
        if tilt is None:
            tilt = float(rng.choice([-1.0, 1.0]) * rng.uniform(*HARD["tilt_deg"]))  # type: ignore[misc]
        u, v, w, ux, uy, semi_y, age = _hard_geometry(rng, fine, fine_spacing, axes, tilt)
    else:
        tilt = 0.0 if oblique_deg is None else float(oblique_deg)
        u, v, w, ux, uy, semi_y, age = _easy_geometry(rng, fine, fine_spacing, axes)
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
    labels = np.zeros(fine, dtype=np.uint8)
    labels[gland] = _PZ
    anterior = (v >= tz_c[1] + 0.85 * tz_r[1]) & (np.abs(u) < 0.6) & (np.abs(w - tz_c[2]) < tz_r[2])
    labels[gland & anterior] = _AFS
    labels[gland & tz] = _TZ

    # Urethra: a tube along S-I, 3.5-5 mm across (the distal urethra with its sphincter muscle
    # as outlined in Meyer et al.'s labels); a 1-2 mm lumen would be a handful of voxels per
    # slice at 0.5 mm, too few to learn or score. Its apical third is the DPU.
    urethra_mm = max(rng.uniform(1.75, 2.5), 2.2 * spacing[0])
    uy = uy - tz_c[1] * semi_y
    tube = np.broadcast_to((ux**2 + uy**2) <= urethra_mm**2, fine)
    lumen = np.broadcast_to((ux**2 + uy**2) <= (0.4 * urethra_mm) ** 2, fine)
    zs = np.flatnonzero(gland.any(axis=(0, 1)))
    if zs.size == 0:  # cannot happen with the size limits above; guard anyway
        raise RuntimeError(f"phantom {seed}: the gland fell outside the volume")
    if hard:  # the apical third along the gland's own (tilted) axis
        apical = np.broadcast_to(w < -1.0 / 3.0, fine)
    else:  # the lowest third of the gland's slices
        extent = zs[-1] - zs[0] + 1
        apical_z = np.zeros(fine[2], dtype=bool)
        apical_z[zs[0] : zs[0] + max(1, extent // 3)] = True
        apical = np.broadcast_to(apical_z[None, None, :], fine)
    labels[gland & tube & apical] = _DPU
    labels[gland & tube & ~apical & (labels != _PZ)] = _TZ

    # Intensities: zone means, textures, partial-volume blur, bias field, Rician noise.
    img = np.empty(fine, dtype=np.float64)
    for code, mean in _MEAN.items():
        img[labels == code] = mean
    img[(labels == _DPU) & lumen] = _LUMEN
    sig_vox = lambda mm: tuple(mm / sp for sp in fine_spacing)  # noqa: E731
    texture = _smooth_noise(rng, fine, sig_vox(2.0))
    nodules = _smooth_noise(rng, fine, sig_vox(1.5))
    img += np.where(labels == 0, 0.08 * texture, 0.0)
    img += np.where(labels == _TZ, 0.10 * nodules, 0.0)
    img += np.where(labels == _PZ, 0.03 * texture, 0.0)
    capsule = gland & (r2 >= 0.88)
    img[capsule & (labels == _PZ)] *= 0.85
    spec = np.fft.rfftn(img)
    freqs = [np.fft.fftfreq(n) for n in fine[:-1]] + [np.fft.rfftfreq(fine[-1])]
    grids = np.meshgrid(*freqs, indexing="ij", sparse=True)
    blur = (0.6, 0.6, 0.3 * k)
    expo = sum((2 * math.pi * b * g) ** 2 / 2 for b, g in zip(blur, grids, strict=True))
    img = np.fft.irfftn(spec * np.exp(-expo), s=fine)
    if k > 1:  # partial volume: each thick slice is the mean of its sub-slices
        img = img.reshape(*shape, k).mean(axis=-1)
        labels = np.ascontiguousarray(labels[..., k // 2 :: k])
        gland = np.ascontiguousarray(gland[..., k // 2 :: k])
    field = np.exp(bias * _smooth_noise(rng, shape, tuple(0.35 * n for n in shape)))
    img = np.clip(img * field, 0.0, None)
    re = img + noise * rng.standard_normal(shape)
    im = noise * rng.standard_normal(shape)
    t2 = (np.sqrt(re**2 + im**2) * 1000.0).astype(np.float32)

    aff = _affine(spacing, shape, tilt)
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
        Passed to :func:`make_phantom` (``family``, ``shape``, ``spacing``, ``oblique_deg``,
        ...).

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

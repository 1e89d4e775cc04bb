"""A patient-individual PI-RADS sector map from a prostate-zone label map.

This goes beyond Das et al. (arXiv:2309.12970), whose motivation is that zone segmentations
should be usable for the PI-RADS sector map (Meyer et al., ISBI 2019). The map here is the
36-sector prostate grid of PI-RADS v2 / v2.1 [1]_, computed geometrically from the zones, plus
three DPU sectors:

* level: base / mid / apex = superior / middle / inferior third of the gland's z extent
  (by slice centre: ``t = (z - z_min + 0.5) / n_slices``; ``t < 1/3`` apex, ``t < 2/3`` mid,
  else base);
* side: split at the gland's x centroid (mean voxel index); ``x > centroid`` is the patient's
  right, since in nibabel's RAS+ canonical orientation the +x axis points to the patient's
  **R**\\ ight (+y anterior, +z superior); ties go to the left;
* anterior / posterior: split at the gland's y centroid, ``y > centroid`` anterior;
* posterior PZ, medial / lateral: in the axial plane, the angle ``phi`` (degrees, from mm
  offsets) between the posterior midline and the line from the gland's centroid ``(cx, cy)``
  to the voxel, ``phi = atan2(|x - cx|, cy - y)``; ``phi < 45`` is posteromedial (PZpm),
  ``phi >= 45`` posterolateral (PZpl). Posterior voxels have ``phi`` in ``[0, 90]``, so 45
  degrees halves the posterior quadrant of each side;
* sectors per level and side: PZ anterior (PZa), posterolateral (PZpl), posteromedial
  (PZpm); TZ anterior (TZa), posterior (TZp); anterior fibromuscular stroma (AS) — 6 x 2 x 3
  = 36 sectors (codes 1-36);
* DPU (the distal urethra, not a PI-RADS sector): one sector per level (codes 37-39).

Every gland voxel (label 1-4) gets exactly one code in ``1..39``; background stays 0. The
seminal vesicles, the external urethral sphincter and the central zone at the base, which the
v2.1 map also names, need structures that these four zones do not separate and are not produced.
The centroid (not the urethra, which PI-RADS uses as the centre) defines the split lines
because the urethra is only labelled in the apical third here.

References
----------
.. [1] Turkbey et al., "Prostate Imaging Reporting and Data System Version 2.1", Eur. Urol. 2019.
.. [2] Meyer et al., "Towards Patient-Individual PI-Rads v2 Sector Map", ISBI 2019.
.. [3] Das, Ghosh, Stober, arXiv:2309.12970, 2023.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .zones import N_CLASSES, ZONE_CODES, ZONES

__all__ = [
    "MEDIAL_ANGLE_DEG",
    "SECTOR_CODES",
    "SECTORS",
    "sector_map",
    "zone_volumes",
]

_LEVELS = ("base", "mid", "apex")
_SIDES = ("right", "left")

#: PI-RADS abbreviation -> (zone, part); ``part`` fills the table's ``ap`` column.
_PARTS: dict[str, tuple[str, str]] = {
    "PZa": ("PZ", "anterior"),
    "PZpl": ("PZ", "posterolateral"),
    "PZpm": ("PZ", "posteromedial"),
    "TZa": ("TZ", "anterior"),
    "TZp": ("TZ", "posterior"),
    "AS": ("AFS", "anterior"),
}

#: Angle (degrees from the posterior midline) separating posteromedial from posterolateral PZ.
MEDIAL_ANGLE_DEG = 45.0


def _build() -> list[tuple[int, str, str, str, str, str]]:
    rows = []
    code = 1
    for level in _LEVELS:
        for side in _SIDES:
            for abbr, (zone, part) in _PARTS.items():
                rows.append((code, f"{abbr} {side} {level}", zone, level, side, part))
                code += 1
    for level in _LEVELS:
        rows.append((code, f"DPU {level}", "DPU", level, "midline", "midline"))
        code += 1
    return rows


#: ``(code, name, zone, level, side, ap)`` for each sector.
SECTORS: tuple[tuple[int, str, str, str, str, str], ...] = tuple(_build())

#: Sector code -> name, e.g. ``2 -> "PZpl right base"``.
SECTOR_CODES: dict[int, str] = {row[0]: row[1] for row in SECTORS}

_LOOKUP: dict[tuple[str, str, str, str], int] = {
    (zone, level, side, ap): code for code, _, zone, level, side, ap in SECTORS
}


def _check(zones: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    zones = np.asarray(zones)
    if zones.ndim != 3:
        raise ValueError(f"zones must be (X, Y, Z), got shape {zones.shape}")
    if len(spacing) != 3:
        raise ValueError(f"spacing must have three entries, got {spacing}")
    bad = np.setdiff1d(np.unique(zones), list(ZONE_CODES))
    if bad.size:
        raise ValueError(f"unknown zone labels {bad.tolist()}; expected 0-4")
    return zones.astype(np.int64, copy=False)


def zone_volumes(zones: np.ndarray, spacing: Sequence[float]) -> dict[str, float]:
    """Volume of each zone in mL.

    Parameters
    ----------
    zones
        ``(X, Y, Z)`` label map (0 background, 1 PZ, 2 TZ, 3 DPU, 4 AFS).
    spacing
        Voxel size in mm.

    Returns
    -------
    dict of str to float
        ``{"PZ": ..., "TZ": ..., "DPU": ..., "AFS": ...}`` in mL (1 mL = 1000 mm^3).
    """
    zones = _check(zones, spacing)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    counts = np.bincount(zones.ravel(), minlength=N_CLASSES)
    return {name: float(counts[code]) * voxel_ml for code, name in ZONES.items()}


def sector_map(zones: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, pd.DataFrame]:
    """Split the gland into the PI-RADS sectors (see the module docstring for the convention).

    Parameters
    ----------
    zones
        ``(X, Y, Z)`` label map in RAS+ canonical orientation (+x right, +y anterior,
        +z superior), e.g. after ``nibabel.as_closest_canonical``.
    spacing
        Voxel size in mm.

    Returns
    -------
    sectors : numpy.ndarray
        int16 map of the same shape, 0 outside the gland and a :data:`SECTOR_CODES` key inside.
    table : pandas.DataFrame
        One row per sector (empty ones included) with columns ``code, name, zone, level, side,
        ap, voxels, volume_ml``; ``ap`` is ``anterior``, ``posterior``, ``posterolateral``,
        ``posteromedial`` or ``midline``.

    References
    ----------
    .. [1] Turkbey et al., PI-RADS v2.1, Eur. Urol. 2019.
    """
    zones = _check(zones, spacing)
    sectors = np.zeros(zones.shape, dtype=np.int16)
    gland = zones > 0
    if gland.any():
        x, y, z = np.nonzero(gland)
        cx, cy = x.mean(), y.mean()
        z0, nz = z.min(), z.max() - z.min() + 1
        t = (z - z0 + 0.5) / nz
        level = np.where(t < 1 / 3, "apex", np.where(t < 2 / 3, "mid", "base"))
        side = np.where(x > cx, "right", "left")
        dx = (x - cx) * float(spacing[0])
        dy = (y - cy) * float(spacing[1])
        anterior = dy > 0
        phi = np.degrees(np.arctan2(np.abs(dx), -dy))
        zone = np.vectorize(ZONES.__getitem__, otypes=[object])(zones[x, y, z])
        part = np.where(anterior, "anterior", "posterior").astype(object)
        pz_post = (zone == "PZ") & ~anterior
        part[pz_post] = np.where(phi[pz_post] < MEDIAL_ANGLE_DEG, "posteromedial",
                                 "posterolateral")
        part[zone == "AFS"] = "anterior"
        dpu = zone == "DPU"
        side = np.where(dpu, "midline", side)
        part[dpu] = "midline"
        codes = np.fromiter(
            (_LOOKUP[key] for key in zip(zone, level, side, part, strict=True)),
            dtype=np.int16,
            count=x.size,
        )
        sectors[x, y, z] = codes
    counts = np.bincount(sectors.ravel(), minlength=len(SECTORS) + 1)
    voxel_ml = float(np.prod(spacing)) / 1000.0
    table = pd.DataFrame(
        [
            {
                "code": code,
                "name": name,
                "zone": zone_name,
                "level": lev,
                "side": sd,
                "ap": a,
                "voxels": int(counts[code]),
                "volume_ml": float(counts[code]) * voxel_ml,
            }
            for code, name, zone_name, lev, sd, a in SECTORS
        ]
    )
    return sectors, table

"""A patient-individual PI-RADS v2.1 sector map from a prostate-zone label map.

This goes beyond Das et al. (arXiv:2309.12970), whose motivation is that zone segmentations
should be usable for the PI-RADS sector map (Meyer et al., ISBI 2019). The v2.1 scheme has 38
sectors; this module implements a simplified, fully geometric 30-sector version:

* levels: base / mid / apex = superior / middle / inferior third of the gland's z extent
  (by slice centre: ``t = (z - z_min + 0.5) / n_slices``; ``t < 1/3`` apex, ``t < 2/3`` mid,
  else base);
* side: split at the gland's x centroid (mean voxel index); ``x > centroid`` is the patient's
  right, since in nibabel's RAS+ canonical orientation the +x axis points to the patient's
  **R**\\ ight (+y anterior, +z superior); ties go to the left;
* anterior / posterior: split at the gland's y centroid, ``y > centroid`` anterior;
* PZ and TZ: level x side x ap = 12 sectors each (v2.1 further splits the posterior PZ into
  posteromedial/posterolateral; not done here);
* DPU and AFS (midline structures): one sector per level each (3 + 3).

Every gland voxel (label 1-4) gets exactly one code in ``1..30``; background stays 0.

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

__all__ = ["SECTOR_CODES", "SECTORS", "ZONE_NAMES", "sector_map", "zone_volumes"]

#: Label code -> zone abbreviation (Das et al.).
ZONE_NAMES: dict[int, str] = {1: "PZ", 2: "TZ", 3: "DPU", 4: "AFS"}

_LEVELS = ("base", "mid", "apex")
_SIDES = ("right", "left")
_AP = ("anterior", "posterior")


def _build() -> list[tuple[int, str, str, str, str, str]]:
    rows = []
    code = 1
    for zone in ("PZ", "TZ"):
        for level in _LEVELS:
            for side in _SIDES:
                for ap in _AP:
                    rows.append((code, f"{zone} {ap} {side} {level}", zone, level, side, ap))
                    code += 1
    for zone in ("AFS", "DPU"):
        for level in _LEVELS:
            rows.append((code, f"{zone} {level}", zone, level, "midline", "midline"))
            code += 1
    return rows


#: ``(code, name, zone, level, side, ap)`` for each sector.
SECTORS: tuple[tuple[int, str, str, str, str, str], ...] = tuple(_build())

#: Sector code -> name, e.g. ``1 -> "PZ anterior right base"``.
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
    bad = np.setdiff1d(np.unique(zones), [0, *ZONE_NAMES])
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
    counts = np.bincount(zones.ravel(), minlength=5)
    return {name: float(counts[code]) * voxel_ml for code, name in ZONE_NAMES.items()}


def sector_map(zones: np.ndarray, spacing: Sequence[float]) -> tuple[np.ndarray, pd.DataFrame]:
    """Split the gland into simplified PI-RADS v2.1 sectors (see the module docstring).

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
        ap, voxels, volume_ml``.

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
        ap = np.where(y > cy, "anterior", "posterior")
        zone = np.vectorize(ZONE_NAMES.__getitem__, otypes=[object])(zones[x, y, z])
        midline = np.isin(zone, ("AFS", "DPU"))
        side = np.where(midline, "midline", side)
        ap = np.where(midline, "midline", ap)
        codes = np.fromiter(
            (_LOOKUP[key] for key in zip(zone, level, side, ap, strict=True)),
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

"""A patient-individual PI-RADS sector map from a prostate-zone label map.

This goes beyond Das et al. (arXiv:2309.12970), whose motivation is that zone segmentations
should be usable for the PI-RADS sector map (Meyer et al., ISBI 2019). The map here is the
36-sector prostate grid of PI-RADS v2 [1]_ (labelled "v2 36-sector", :data:`SCHEME`),
computed geometrically from the zones, plus three DPU sectors:

* level: base / mid / apex = superior / middle / inferior third of the gland's z extent
  (by slice centre: ``t = (z - z_min + 0.5) / n_slices``; ``t < 1/3`` apex, ``t < 2/3`` mid,
  else base);
* centre of each level: the split lines of a level go through that level's own centre
  ``(cx, cy)`` (mean voxel index over the level's slices), not through one centroid of the
  whole gland, so a gland that is tilted or curved along S-I (an oblique acquisition, an
  enlarged median lobe) is split where it lies at every level. The centre is the DPU's
  centroid in the level where the level has DPU voxels (PI-RADS centres the sector grid on the
  urethra [1]_; the urethra is labelled here only as the DPU, in the apical third), else
  the centroid of the level's gland voxels;
* side: split at ``cx``; ``x > cx`` is the patient's right, since in nibabel's RAS+ canonical
  orientation the +x axis points to the patient's **R**\\ ight (+y anterior, +z superior);
  ties go to the left;
* anterior / posterior: split at ``cy``, ``y > cy`` anterior;
* posterior PZ, medial / lateral: in the axial plane, the angle ``phi`` (degrees, from mm
  offsets) between the posterior midline and the line from the level's centre ``(cx, cy)``
  to the voxel, ``phi = atan2(|x - cx|, cy - y)``; ``phi < 45`` is posteromedial (PZpm),
  ``phi >= 45`` posterolateral (PZpl). Posterior voxels have ``phi`` in ``[0, 90]``, so 45
  degrees halves the posterior quadrant of each side;
* sectors per level and side: PZ anterior (PZa), posterolateral (PZpl), posteromedial
  (PZpm); TZ anterior (TZa), posterior (TZp); anterior fibromuscular stroma (AS) — 6 x 2 x 3
  = 36 sectors (codes 1-36);
* DPU (the distal urethra, not a PI-RADS sector): one sector per level (codes 37-39).

Every gland voxel (label 1-4) gets exactly one code in ``1..39``; background stays 0. What
PI-RADS v2.1 adds to the v2 grid [1]_ (the two central-zone sectors at the base) and the
non-prostate sectors of both versions (seminal vesicles, external urethral sphincter) need
structures that these four zones do not separate; they are not produced, so the map is called
"v2 36-sector", not v2.1 (:func:`sector_scheme` says which grid a table holds).

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

from .zones import N_CLASSES, ZONE_CODE, ZONE_CODES, ZONES

__all__ = [
    "MEDIAL_ANGLE_DEG",
    "SCHEME",
    "SCHEME_V21",
    "SECTOR_CODES",
    "SECTORS",
    "level_centres",
    "sector_map",
    "sector_scheme",
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

#: The name of the grid this module produces: the 36 prostate sectors of PI-RADS v2, + 3 DPU.
SCHEME = "PI-RADS v2 36-sector (+3 DPU)"

#: The name a map would carry if it held the structures PI-RADS v2.1 adds (central zone).
SCHEME_V21 = "PI-RADS v2.1"

#: Zones (sector table ``zone`` values) only the v2.1 grid has; none is produced here.
_V21_ONLY = frozenset({"CZ"})


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


def _levels(z: np.ndarray) -> np.ndarray:
    """Level name of each gland voxel from its slice index ``z`` (thirds of the z extent)."""
    z0, nz = z.min(), z.max() - z.min() + 1
    t = (z - z0 + 0.5) / nz
    return np.where(t < 1 / 3, "apex", np.where(t < 2 / 3, "mid", "base"))


def level_centres(zones: np.ndarray) -> dict[str, tuple[float, float, str]]:
    """The centre of the split lines of each level (see the module docstring).

    Parameters
    ----------
    zones
        ``(X, Y, Z)`` label map in RAS+ canonical orientation (0 background, 1-4 zones).

    Returns
    -------
    dict of str to (float, float, str)
        ``level -> (cx, cy, source)`` for each level holding gland voxels: the mean voxel
        index along x and y of the level's DPU voxels (``source == "DPU"``) where it has any,
        else of its gland voxels (``source == "gland"``). Empty for an empty map.
    """
    zones = np.asarray(zones)
    x, y, z = np.nonzero(zones > 0)
    if x.size == 0:
        return {}
    level = _levels(z)
    dpu = zones[x, y, z] == ZONE_CODE["DPU"]
    out: dict[str, tuple[float, float, str]] = {}
    for name in _LEVELS:
        here = level == name
        if not here.any():
            continue
        pick, source = (here & dpu, "DPU") if (here & dpu).any() else (here, "gland")
        out[name] = (float(x[pick].mean()), float(y[pick].mean()), source)
    return out


def sector_scheme(table: pd.DataFrame) -> str:
    """The name of the sector grid a :func:`sector_map` table holds.

    :data:`SCHEME_V21` only when the table has a non-empty sector of a structure that PI-RADS
    v2.1 adds to v2 (the central zone); else :data:`SCHEME`, "v2 36-sector". The four zones
    produced here never give v2.1 structures, so maps of this module are always
    :data:`SCHEME`; the check keeps the label honest if the table ever grows.
    """
    filled = table[table["voxels"] > 0] if "voxels" in table else table
    return SCHEME_V21 if set(filled["zone"]) & _V21_ONLY else SCHEME


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
        ``posteromedial`` or ``midline``. ``table.attrs`` holds ``"scheme"``
        (:func:`sector_scheme`) and ``"centres"`` (:func:`level_centres`: each level's split
        centre in voxel indices and whether it is the DPU's or the gland's).

    References
    ----------
    .. [1] Turkbey et al., PI-RADS v2.1, Eur. Urol. 2019.
    """
    zones = _check(zones, spacing)
    sectors = np.zeros(zones.shape, dtype=np.int16)
    gland = zones > 0
    centres = level_centres(zones)
    if gland.any():
        x, y, z = np.nonzero(gland)
        level = _levels(z)
        cx = np.zeros(x.size)
        cy = np.zeros(x.size)
        for name, (lx, ly, _) in centres.items():  # each level split about its own centre
            here = level == name
            cx[here], cy[here] = lx, ly
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
    table.attrs["scheme"] = sector_scheme(table)
    table.attrs["centres"] = centres
    return sectors, table

"""Tests for pirads.sectors (PI-RADS v2.1 sector map; Turkbey et al. 2019)."""

from __future__ import annotations

import numpy as np
import pytest

from pirads.sectors import SECTOR_CODES, sector_map, zone_volumes

SPACING = (0.5, 0.5, 3.0)
VOXEL_ML = 0.5 * 0.5 * 3.0 / 1000


def _phantom() -> np.ndarray:
    """A 20 x 20 x 12 box: posterior half PZ, anterior half TZ, midline DPU and AFS strips."""
    zones = np.zeros((32, 32, 16), dtype=np.int64)
    zones[6:26, 6:26, 2:14] = 2
    zones[6:26, 6:16, 2:14] = 1  # y < 16 posterior
    zones[15:17, 14:18, 2:10] = 3
    zones[14:18, 24:26, 5:14] = 4
    return zones


def test_sector_map_covers_exactly_the_gland() -> None:
    zones = _phantom()
    sectors, table = sector_map(zones, SPACING)
    assert sectors.shape == zones.shape
    assert ((sectors > 0) == (zones > 0)).all()
    assert set(np.unique(sectors[zones > 0])) <= set(SECTOR_CODES)
    assert list(table.columns) == [
        "code",
        "name",
        "zone",
        "level",
        "side",
        "ap",
        "voxels",
        "volume_ml",
    ]
    assert len(table) == len(SECTOR_CODES) == 30
    assert table["voxels"].sum() == (zones > 0).sum()
    # each sector holds voxels of one zone only
    for code in np.unique(sectors[sectors > 0]):
        zone = table.set_index("code").loc[code, "zone"]
        code_of = {"PZ": 1, "TZ": 2, "DPU": 3, "AFS": 4}[zone]
        assert (zones[sectors == code] == code_of).all()


def test_sector_volumes_sum_to_zone_volumes_in_ml() -> None:
    zones = _phantom()
    _, table = sector_map(zones, SPACING)
    volumes = zone_volumes(zones, SPACING)
    assert volumes["DPU"] == pytest.approx(2 * 4 * 8 * VOXEL_ML)
    assert volumes["AFS"] == pytest.approx(4 * 2 * 9 * VOXEL_ML)
    total = 20 * 20 * 12 * VOXEL_ML  # 3.6 mL
    assert sum(volumes.values()) == pytest.approx(total)
    per_zone = table.groupby("zone")["volume_ml"].sum()
    for zone, ml in volumes.items():
        assert per_zone[zone] == pytest.approx(ml)


def test_left_right_and_base_apex_on_symmetric_phantom() -> None:
    zones = _phantom()
    sectors, table = sector_map(zones, SPACING)
    by_code = table.set_index("code")
    # RAS+: larger x is the patient's right; larger z is superior (base)
    assert by_code.loc[sectors[25, 10, 13], "name"] == "PZ posterior right base"
    assert by_code.loc[sectors[6, 10, 2], "name"] == "PZ posterior left apex"
    assert by_code.loc[sectors[6, 20, 7], "name"] == "TZ anterior left mid"
    assert by_code.loc[sectors[16, 15, 2], "name"] == "DPU apex"
    assert by_code.loc[sectors[15, 25, 13], "name"] == "AFS base"
    # the box is symmetric: mirrored sectors have equal volumes, thirds are 4 slices each
    pz = table[table.zone == "PZ"].set_index(["level", "side", "ap"])["voxels"]
    for level in ("base", "mid", "apex"):
        assert pz[(level, "left", "posterior")] == pz[(level, "right", "posterior")]
    right = sectors[16:26][zones[16:26] == 1]
    assert all("right" in SECTOR_CODES[int(c)] for c in np.unique(right))
    assert all(
        "base" in SECTOR_CODES[int(c)]
        for c in np.unique(sectors[..., 10:14][zones[..., 10:14] > 0])
    )


def test_empty_and_invalid() -> None:
    sectors, table = sector_map(np.zeros((4, 4, 4), dtype=int), SPACING)
    assert not sectors.any() and table["voxels"].sum() == 0
    with pytest.raises(ValueError):
        sector_map(np.full((4, 4, 4), 7), SPACING)
    with pytest.raises(ValueError):
        zone_volumes(np.zeros((4, 4)), SPACING)

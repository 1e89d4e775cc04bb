"""Tests for pirads.sectors (PI-RADS v2.1 sector map; Turkbey et al. 2019)."""

from __future__ import annotations

import numpy as np
import pytest

from medcl.pirads.sectors import SECTOR_CODES, SECTORS, sector_map, zone_volumes

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
    assert len(table) == len(SECTOR_CODES) == 39  # 36 PI-RADS prostate sectors + 3 DPU
    per_zone = table.groupby("zone").size().to_dict()
    assert per_zone == {"PZ": 18, "TZ": 12, "AFS": 6, "DPU": 3}
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
    assert by_code.loc[sectors[25, 10, 13], "name"] == "PZpl right base"
    assert by_code.loc[sectors[6, 10, 2], "name"] == "PZpl left apex"
    assert by_code.loc[sectors[6, 20, 7], "name"] == "TZa left mid"
    assert by_code.loc[sectors[16, 15, 2], "name"] == "DPU apex"
    assert by_code.loc[sectors[15, 25, 13], "name"] == "AS left base"
    assert by_code.loc[sectors[16, 25, 13], "name"] == "AS right base"
    # the box is symmetric: mirrored sectors have equal volumes, thirds are 4 slices each
    pz = table[table.zone == "PZ"].set_index(["level", "side", "ap"])["voxels"]
    for level in ("base", "mid", "apex"):
        for part in ("posterolateral", "posteromedial"):
            assert pz[(level, "left", part)] == pz[(level, "right", part)] > 0
    right = sectors[16:26][zones[16:26] == 1]
    assert all("right" in SECTOR_CODES[int(c)] for c in np.unique(right))
    assert all(
        "base" in SECTOR_CODES[int(c)]
        for c in np.unique(sectors[..., 10:14][zones[..., 10:14] > 0])
    )


def test_posterior_pz_split_by_angle_from_the_midline() -> None:
    """Posterior PZ within 45 deg of the posterior midline (around the gland's centroid, in mm)
    is posteromedial, beyond it posterolateral; anterior PZ is PZa whatever its angle."""
    zones = np.full((41, 41, 3), 2, dtype=np.int64)  # the gland fills the slab: centre (20, 20)
    zones[:, :20] = 1  # posterior half PZ
    zones[:, 38:] = 1  # an anterior PZ rim
    zones[19:22, 30:] = 4  # AFS strip on the anterior midline
    sectors, table = sector_map(zones, SPACING)
    names = table.set_index("code")["name"]
    expected = {
        (20, 0): "PZpm left mid",  # on the midline (x == centroid goes left), phi 0
        (23, 5): "PZpm right mid",  # phi 11
        (35, 2): "PZpm right mid",  # phi 40
        (2, 5): "PZpl left mid",  # phi 50
        (40, 18): "PZpl right mid",  # phi 84
        (0, 19): "PZpl left mid",  # phi 87
        (25, 39): "PZa right mid",  # anterior
        (5, 39): "PZa left mid",
        (20, 35): "AS left mid",
        (21, 35): "AS right mid",
        (30, 25): "TZa right mid",
    }
    for (i, j), name in expected.items():
        assert names[sectors[i, j, 1]] == name, (i, j)
    # mirror symmetry about x = 20 (the centroid column itself goes left)
    pz = table[table.zone == "PZ"].set_index(["level", "side", "ap"])["voxels"]
    col = int(((zones[20] == 1) & (np.arange(41)[:, None] < 20)).sum())  # midline posterior PZ
    assert pz[("mid", "left", "posteromedial")] == pz[("mid", "right", "posteromedial")] + col // 3
    # anterior + posteromedial + posterolateral = all PZ of each side
    for side, xs in (("left", slice(0, 21)), ("right", slice(21, 41))):
        assert pz.xs(side, level="side").sum() == (zones[xs] == 1).sum()
    # the angle is measured in mm: wider voxels along x put more PZ beyond 45 degrees
    _, stretched = sector_map(zones, (1.5, 0.5, 3.0))
    medial = table[table.ap == "posteromedial"].voxels.sum()
    assert 0 < stretched[stretched.ap == "posteromedial"].voxels.sum() < medial
    assert {row[4] for row in SECTORS if row[2] == "AFS"} == {"right", "left"}


def test_empty_and_invalid() -> None:
    sectors, table = sector_map(np.zeros((4, 4, 4), dtype=int), SPACING)
    assert not sectors.any() and table["voxels"].sum() == 0
    with pytest.raises(ValueError):
        sector_map(np.full((4, 4, 4), 7), SPACING)
    with pytest.raises(ValueError):
        zone_volumes(np.zeros((4, 4)), SPACING)

"""Tests for pirads.sectors (PI-RADS v2.1 sector map; Turkbey et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medcl.pirads.sectors import (
    SCHEME,
    SCHEME_V21,
    SECTOR_CODES,
    SECTORS,
    sector_map,
    sector_scheme,
    zone_volumes,
)

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


def _curved_gland() -> np.ndarray:
    """A gland whose axial cross-section drifts towards the patient's right and anterior with
    height (a tilted / curved gland): a 12 x 12 voxel PZ/TZ square per slice, posterior half
    PZ, its corner moving +8 voxels in x and +3 in y from one level (3 slices) to the next."""
    zones = np.zeros((48, 32, 9), dtype=np.int64)
    for k in range(9):
        x0, y0 = 4 + 8 * (k // 3), 6 + 3 * (k // 3)
        zones[x0 : x0 + 12, y0 : y0 + 12, k] = 2
        zones[x0 : x0 + 12, y0 : y0 + 6, k] = 1
    return zones


def test_split_lines_follow_each_level_of_a_curved_gland() -> None:
    """Issue 12, item 12: every level is split about its own centre; with one global centroid
    the apex of a gland drifting to the right would be (almost) all "left" and its base all
    "right"."""
    zones = _curved_gland()
    sectors, table = sector_map(zones, SPACING)
    x, y, z = np.nonzero(zones)
    global_cx = x.mean()
    apex = zones[..., :3] > 0
    assert (np.nonzero(apex)[0] <= global_cx).mean() > 0.8  # global split: apex mostly left
    centres = table.attrs["centres"]
    assert set(centres) == {"apex", "mid", "base"}
    for level, slices in (("apex", range(0, 3)), ("mid", range(3, 6)), ("base", range(6, 9))):
        xs, ys = np.nonzero(zones[..., list(slices)] > 0)[:2]
        assert centres[level][:2] == pytest.approx((xs.mean(), ys.mean()))
        assert centres[level][2] == "gland"
        rows = table[table.level == level]
        by_side = rows.groupby("side")["voxels"].sum()
        assert by_side["left"] == by_side["right"] > 0  # each level halved left / right
        # TZ anterior / posterior also split at the level's own y centre
        tz = rows[rows.zone == "TZ"].groupby("ap")["voxels"].sum()
        assert tz["anterior"] > 0 and tz.get("posterior", 0) == 0  # TZ is the anterior half
        pz = rows[rows.zone == "PZ"].set_index(["side", "ap"])["voxels"]
        assert pz.xs("anterior", level="ap").sum() == 0
        for part in ("posteromedial", "posterolateral"):
            assert pz[("left", part)] == pz[("right", part)] > 0  # mirror-symmetric per level
    # an apex voxel right of the apex's centre but left of the global centroid is "right"
    names = table.set_index("code")["name"]
    assert centres["apex"][0] == pytest.approx(9.5) and global_cx > 14
    assert names[sectors[12, 7, 1]] == "PZpm right apex"
    assert names[sectors[15, 9, 1]] == "PZpl right apex"
    assert names[sectors[9, 7, 1]] == "PZpm left apex"
    assert names[sectors[25, 13, 7]] == "PZpm left base"  # base square x 20..31, centre 25.5
    assert names[sectors[26, 13, 7]] == "PZpm right base"
    assert (sectors > 0).sum() == (zones > 0).sum()


def test_level_centre_is_the_dpu_where_present() -> None:
    """Where a level has DPU voxels its split lines go through the DPU (the urethra), not the
    gland's centroid: an asymmetric apex (a bulging left lobe) is split at the urethra."""
    zones = np.zeros((40, 32, 9), dtype=np.int64)
    zones[10:30, 6:26, :] = 2
    zones[10:30, 6:16, :] = 1
    zones[4:10, 6:16, :3] = 1  # a left lobe bulging at the apex only: gland centroid moves left
    zones[19:21, 14:18, :3] = 3  # DPU at the apex, centre x 19.5, y 15.5
    sectors, table = sector_map(zones, SPACING)
    centres = table.attrs["centres"]
    assert centres["apex"] == pytest.approx((19.5, 15.5, "DPU"))
    xs = np.nonzero(zones[..., :3] > 0)[0]
    assert xs.mean() < 19.0  # the apex gland centroid lies left of the urethra
    assert centres["mid"][2] == centres["base"][2] == "gland"
    names = table.set_index("code")["name"]
    assert names[sectors[19, 8, 1]] == "PZpm left apex"
    assert names[sectors[20, 8, 1]] == "PZpm right apex"
    assert names[sectors[19, 17, 1]].startswith("DPU")
    # left of the urethra there is more PZ at the apex (the lobe), the split did not move
    apex_pz = table[(table.level == "apex") & (table.zone == "PZ")].groupby("side")["voxels"]
    assert apex_pz.sum()["left"] > apex_pz.sum()["right"]


def test_sector_scheme_is_v2_36_sector() -> None:
    """The grid produced is labelled "v2 36-sector", not v2.1: no v2.1 structure (central
    zone) is produced; a table that held one would carry the v2.1 label."""
    _, table = sector_map(_phantom(), SPACING)
    assert table.attrs["scheme"] == SCHEME == sector_scheme(table)
    assert "v2 36-sector" in SCHEME and "2.1" not in SCHEME
    assert not any("2.1" in name for name in SECTOR_CODES.values())
    with_cz = pd.concat([table, pd.DataFrame([{"code": 40, "name": "CZ right base",
                                               "zone": "CZ", "voxels": 5}])])
    assert sector_scheme(with_cz) == SCHEME_V21
    empty_cz = with_cz.assign(voxels=lambda t: t.voxels.where(t.zone != "CZ", 0))
    assert sector_scheme(empty_cz) == SCHEME

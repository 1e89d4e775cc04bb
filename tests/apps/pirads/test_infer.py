"""Tests of pirads.infer: whole-field-of-view sliding window, largest gland kept, outputs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from helpers import assert_same_geometry
from medcl.pirads.config import PiradsConfig
from medcl.pirads.infer import check_outputs, keep_gland, predict_zones


class Bright(nn.Module):
    """A stand-in network: TZ wherever the preprocessed intensity is above 0.5."""

    def forward(self, x):
        t = 40 * (x - 0.5)
        low = torch.full_like(x, -10.0)
        return {"fused": torch.cat([torch.zeros_like(x), low, t, low, low], dim=1)}


def test_gland_far_off_centre_in_a_large_field_of_view(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.uniform(0.0, 0.3, (384, 384, 24)).astype(np.float32)
    gland = np.zeros(data.shape, bool)
    gland[10:90, 10:90, 6:18] = True  # ~50 mm from the centre, outside a central 64 mm crop
    data[gland] = 1.0
    data[300:303, 300:303, 12] = 1.0  # a distant speck: not the largest connected gland
    path = tmp_path / "big.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.5, 3.0, 1.0])), path)
    cfg = PiradsConfig(crop=[64, 64, 16], filters=[4, 8, 8, 16, 16])

    zones = predict_zones(Bright(), cfg, path)
    assert zones.shape == data.shape
    found = zones > 0
    dice = 2 * (found & gland).sum() / (found.sum() + gland.sum())
    assert dice > 0.9
    assert not found[300:303, 300:303, 12].any()


class Counting(Bright):
    """:class:`Bright`, counting the windows it is shown."""

    calls = 0

    def forward(self, x):
        self.calls += x.shape[0]
        return super().forward(x)


def _scan(tmp_path, corner: tuple[int, int]):
    rng = np.random.default_rng(1)
    data = rng.uniform(0.0, 0.3, (384, 384, 24)).astype(np.float32)
    gland = np.zeros(data.shape, bool)
    x, y = corner
    gland[x:x + 64, y:y + 64, 6:18] = True  # > 1 % of the scan: above the 99th percentile
    data[gland] = 1.0
    path = tmp_path / f"scan_{x}_{y}.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.5, 0.5, 3.0, 1.0])), path)
    return path, gland


@pytest.mark.parametrize("corner, windows", [((160, 160), 1), ((120, 120), 1 + 25)])
def test_one_window_when_the_gland_lies_whole_in_the_centre(tmp_path, corner, windows):
    # at 0.5 mm the scan stays 384 x 384 and the 96-voxel crop sits at 144..240: a gland at
    # 160..224 is whole in it; one at 120..184 crosses its face, so the whole scan is searched
    # (5 x 5 windows of 96 at a 72-voxel step, one through-plane)
    path, gland = _scan(tmp_path, corner)
    net = Counting()
    zones = predict_zones(net, PiradsConfig(crop=[96, 96, 32], filters=[4, 8, 8, 16, 16]), path)
    assert net.calls == windows
    found = zones > 0
    assert 2 * (found & gland).sum() / (found.sum() + gland.sum()) > 0.9


def test_keep_gland_keeps_the_largest_component_of_all_zones():
    z = np.zeros((20, 20, 5), np.uint8)
    z[2:8, 2:8, 1:4] = 1
    z[8:12, 2:8, 1:4] = 2  # touches PZ: one gland
    z[16:18, 16:18, 2] = 4  # separate and smaller
    out = keep_gland(z)
    assert (out[:12] == z[:12]).all() and not out[16:].any()


def test_check_outputs_refuses_before_any_work(tmp_path):
    from medcl.io import ConfigError

    t2 = tmp_path / "t2.nii.gz"
    t2.write_bytes(b"")
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    for kw, match in (({"out": tmp_path / "z.txt"}, "--out must end"),
                      ({"sectors": tmp_path / "s.csv"}, "--sectors must end"),
                      ({"report": tmp_path / "r.txt"}, "--report must end"),
                      ({"sectors": tmp_path / "z.nii.gz"}, "same file"),
                      ({"report": blocker / "r.json"}, "cannot be written")):
        args = {"out": tmp_path / "z.nii.gz", **kw}
        with pytest.raises(ConfigError, match=match):
            check_outputs(t2, args.pop("out"), **args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "t2.nii.gz"]


def _lps_scan(tmp_path, qform_code: int = 1, sform_code: int = 2):
    """An axial scan stored far from RAS (``helpers.oblique_lps_affine``: axes S, L, P, rotated
    15 degrees about S-I; the thick 3 mm axis is stored first), with a bright central gland."""
    from helpers import oblique_lps_affine, write_nifti

    rng = np.random.default_rng(2)
    data = rng.uniform(0.0, 0.3, (12, 64, 64)).astype(np.float32)
    gland = np.zeros(data.shape, bool)
    gland[3:9, 20:44, 20:44] = True  # 7 % of the scan: above the 99th percentile
    data[gland] = 1.0
    path = write_nifti(tmp_path / "lps.nii.gz", data, oblique_lps_affine((3.0, 0.6, 0.6)),
                       qform_code=qform_code, sform_code=sform_code)
    return path, gland


@pytest.mark.parametrize("codes", [(1, 2), (0, 1), (2, 0)])
def test_segment_round_trip_keeps_oblique_lps_geometry(tmp_path, codes):
    """Oblique LPS affine in; zones and sectors out on the same grid: same shape, affine, qform
    and sform (with their codes), uint8 without scaling; the gland found where it is."""
    from medcl.io.nifti import read_volume
    from medcl.pirads.infer import segment_file

    path, gland = _lps_scan(tmp_path, *codes)
    out, sectors = tmp_path / "out" / "zones.nii.gz", tmp_path / "out" / "sectors.nii"
    cfg = PiradsConfig(crop=[64, 64, 16], filters=[4, 8, 8, 16, 16])
    info = segment_file(Bright(), cfg, path, out, sectors=sectors, warn=lambda m: None)
    assert info["warnings"] == []  # an axial scan, however it is stored
    src = nib.load(path)
    for written in (out, sectors):
        img = nib.load(written)
        assert_same_geometry(img, src)
        assert img.get_data_dtype() == np.uint8
        assert img.header.get_slope_inter() == (None, None)
    zones = np.asarray(nib.load(out).dataobj)
    found = zones > 0
    assert 2 * (found & gland).sum() / (found.sum() + gland.sum()) > 0.9
    assert set(np.unique(zones)) <= {0, 2}  # Bright says TZ
    assert ((np.asarray(nib.load(sectors).dataobj) > 0) == found).all()
    assert sorted(p.name for p in out.parent.iterdir()) == ["sectors.nii", "zones.nii.gz"]
    # the zones of the file and of the volume read from it are the same
    np.testing.assert_array_equal(predict_zones(Bright(), cfg, read_volume(path)), zones)


def test_segment_reads_the_scan_once(tmp_path, request):
    from medcl.pirads.infer import segment_file

    path, _ = _lps_scan(tmp_path)
    loads = request.getfixturevalue("nifti_loads")
    segment_file(Bright(), PiradsConfig(crop=[64, 64, 16], filters=[4, 8, 8, 16, 16]), path,
                 tmp_path / "z.nii.gz", sectors=tmp_path / "s.nii.gz", warn=lambda m: None)
    assert loads == [str(path)]


def test_segment_report_names_the_v2_36_sector_grid(tmp_path):
    """Issue 12, item 12: the sector grid is called "v2 36-sector" in the report (no v2.1
    structures are produced), never v2.1."""
    import json

    from medcl.pirads.infer import segment_file
    from medcl.pirads.sectors import SCHEME

    path, _ = _lps_scan(tmp_path)
    report = tmp_path / "r.json"
    info = segment_file(Bright(), PiradsConfig(crop=[64, 64, 16], filters=[4, 8, 8, 16, 16]),
                        path, tmp_path / "z.nii.gz", sectors=tmp_path / "s.nii.gz",
                        report=report, warn=lambda m: None)
    written = json.loads(report.read_text())
    assert info["sector_scheme"] == written["sector_scheme"] == SCHEME
    assert "v2 36-sector" in SCHEME and "2.1" not in report.read_text()
    assert written["sector_table"]  # the gland was found and split

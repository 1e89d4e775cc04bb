"""Tests of pirads.infer: whole-field-of-view sliding window, largest gland kept, outputs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

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

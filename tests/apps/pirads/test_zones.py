"""Tests of pirads.zones: the zone codes and names are written down once and used everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import medcl.pirads as pirads
from medcl.pirads import labels, metrics, phantom, zones


def test_codes_names_and_legend():
    assert zones.ZONES == {1: "PZ", 2: "TZ", 3: "DPU", 4: "AFS"}
    assert zones.ZONE_CODES == {0: "background", **zones.ZONES}
    assert zones.ZONE_CODE["TZ"] == 2 and zones.N_CLASSES == 5
    assert zones.ZONE_LEGEND == "0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS"


def test_every_module_uses_the_one_definition():
    assert metrics.ZONES is zones.ZONES and phantom.ZONES is zones.ZONES
    assert labels.ZONE_CODES is zones.ZONE_CODES
    # no module but zones.py spells the table out again (a dict or tuple of the four names)
    names = set(zones.ZONES.values())
    for path in sorted(Path(pirads.__file__).parent.glob("*.py")):
        if path.name == "zones.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict | ast.Tuple | ast.List):
                items = node.values if isinstance(node, ast.Dict) else node.elts
                found = {v.value for v in items if isinstance(v, ast.Constant)}
                assert not names <= found, f"{path.name}:{node.lineno} repeats the zone table"


def test_cli_help_uses_the_legend(medcl_cli):
    code, out, _ = medcl_cli(["pirads", "train", "--help"])
    assert code == 0
    assert "0 BG, 1 PZ, 2 TZ, 3 DPU, 4 AFS" in " ".join(out.replace("│", " ").split())

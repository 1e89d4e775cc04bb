"""Tests of pirads.metrics: hand-computed surface distances, conventions, batch evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from medcl.io.nifti import Volume
from medcl.pirads.metrics import (
    ZONES,
    evaluate_cases,
    fov_diagonal,
    summary_table,
    zone_metrics,
)

SPACING = (0.5, 0.7, 3.0)


def _cube(shape=(20, 20, 20), start=(5, 5, 5), n=6, label=1) -> np.ndarray:
    a = np.zeros(shape, dtype=np.int64)
    x, y, z = start
    a[x : x + n, y : y + n, z : z + n] = label
    return a


def _by_zone(rows: list[dict]) -> dict[str, dict]:
    return {r["zone_name"]: r for r in rows}


def test_perfect_prediction():
    truth = _cube(label=1) + _cube(start=(12, 5, 5), n=4, label=2)
    rows = _by_zone(zone_metrics(truth, truth, SPACING))
    for name in ("PZ", "TZ"):
        assert rows[name]["dice"] == pytest.approx(1.0)
        assert rows[name]["masd"] == pytest.approx(0.0)
        assert rows[name]["hd95"] == pytest.approx(0.0)


@pytest.mark.parametrize("axis", [0, 2])
def test_one_voxel_shift_in_mm(axis):
    n = 6
    truth = _cube(n=n)
    start = [5, 5, 5]
    start[axis] += 1
    pred = _cube(start=tuple(start), n=n)
    row = _by_zone(zone_metrics(pred, truth, SPACING))["PZ"]
    # Hand count. Surface voxels of an n-cube: n^3 - (n-2)^3. After a one-voxel shift along
    # `axis`, each surface's trailing face (n^2 voxels) is one step (= spacing[axis] mm) from
    # the other surface; a voxel inside its leading face ((n-2)^2 voxels) is the smaller of one
    # step and its in-plane distance to the face's rim (which lies on the other surface); all
    # other surface voxels lie on the other surface (0 mm). Both directions are alike.
    step = SPACING[axis]
    s1, s2 = (SPACING[a] for a in range(3) if a != axis)
    inner = [
        min(step, s1 * min(i, n - 1 - i), s2 * min(j, n - 1 - j))
        for i in range(1, n - 1)
        for j in range(1, n - 1)
    ]
    surface = n**3 - (n - 2) ** 3
    assert row["masd"] == pytest.approx((n**2 * step + sum(inner)) / surface, rel=1e-5)
    assert row["hd95"] == pytest.approx(step, rel=1e-5)
    assert row["dice"] == pytest.approx((n - 1) / n)


def test_absent_zone_conventions():
    truth = _cube(label=1)
    pred = _cube(label=1)
    pred[0:2, 0:2, 0:2] = 3  # DPU predicted but absent from truth
    rows = _by_zone(zone_metrics(pred, truth, SPACING))
    for key in ("dice", "masd", "hd95", "masd_present", "hd95_present"):
        assert math.isnan(rows["TZ"][key])  # absent in both: nothing to score
    assert not rows["TZ"]["missed"] and not rows["TZ"]["spurious"]
    diagonal = math.sqrt((20 * 0.5) ** 2 + (20 * 0.7) ** 2 + (20 * 3.0) ** 2)
    assert fov_diagonal((20, 20, 20), SPACING) == pytest.approx(diagonal)
    dpu = rows["DPU"]  # spurious: predicted, not in the truth
    assert dpu["dice"] == 0.0 and dpu["spurious"] and not dpu["missed"]
    assert dpu["masd"] == pytest.approx(diagonal) and dpu["hd95"] == pytest.approx(diagonal)
    assert math.isnan(dpu["masd_present"]) and math.isnan(dpu["hd95_present"])
    assert dpu["pred_voxels"] == 8 and dpu["truth_voxels"] == 0
    truth2 = _cube(label=1) + _cube(start=(0, 0, 0), n=2, label=4)
    rows = _by_zone(zone_metrics(_cube(label=1), truth2, SPACING))  # AFS missed
    afs = rows["AFS"]
    assert afs["dice"] == 0.0 and afs["missed"] and not afs["spurious"]
    assert afs["masd"] == afs["hd95"] == pytest.approx(diagonal)
    assert math.isnan(afs["masd_present"])
    # a zone in both maps: the two conventions agree
    assert rows["PZ"]["masd"] == rows["PZ"]["masd_present"] == pytest.approx(0.0)
    assert not rows["PZ"]["missed"]
    with pytest.raises(ValueError, match="one shape"):
        zone_metrics(truth[:-1], truth, SPACING)


def test_missing_a_zone_never_improves_the_mean():
    """Item 10 of issue 12: a method that drops the hard case's zone must not score a better
    mean MASD / HD95 than one that finds it roughly; the present-only columns keep the old,
    optimistic view, labelled, and the summary counts the miss."""
    truth_a = _cube(label=1)
    truth_b = _cube(start=(4, 4, 4), n=8, label=1)
    found_a = truth_a.copy()
    rough_b = _cube(start=(6, 6, 4), n=8, label=1)  # case b found, 2 voxels off (1.0 / 1.4 mm)
    rows = []
    for method, preds in (("finds", (found_a, rough_b)),
                          ("misses", (found_a, np.zeros_like(truth_b)))):
        for cid, pred, truth in (("a", preds[0], truth_a), ("b", preds[1], truth_b)):
            for row in zone_metrics(pred, truth, SPACING):
                rows.append({"method": method, "case_id": cid, "status": "ok", **row})
    summ = summary_table(pd.DataFrame(rows)).set_index(["method", "zone_name"])
    finds, misses = summ.loc[("finds", "PZ")], summ.loc[("misses", "PZ")]
    for metric in ("masd", "hd95"):
        assert misses[f"{metric}_mean"] > finds[f"{metric}_mean"]  # penalised: worse
        # present-only: the miss drops out and the mean looks perfect (the old convention)
        assert misses[f"{metric}_present_mean"] == pytest.approx(0.0)
        assert finds[f"{metric}_present_mean"] > 0
    assert misses["n_missed"] == 1 and finds["n_missed"] == 0
    assert misses["n_spurious"] == finds["n_spurious"] == 0
    assert misses["masd_present"] == "0.00 ± 0.00"
    # TZ is absent everywhere: n/a, never counted as missed
    assert summ.loc[("misses", "TZ"), "masd"] == "n/a"
    assert summ.loc[("misses", "TZ"), "n_missed"] == 0


def _write_cases(tmp_path: Path, ids: list[str]) -> list[tuple[str, Path, Path]]:
    pairs = []
    aff = np.diag([*SPACING, 1.0])
    for i, cid in enumerate(ids):
        lab = _cube(start=(5 + i, 5, 5), label=1) + _cube(start=(13, 5, 5), n=4, label=2)
        img = tmp_path / f"{cid}_t2.nii.gz"
        lab_path = tmp_path / f"{cid}_zones.nii.gz"
        nib.save(nib.Nifti1Image(lab.astype(np.float32), aff), img)
        nib.save(nib.Nifti1Image(lab.astype(np.uint8), aff), lab_path)
        pairs.append((cid, img, lab_path))
    return pairs


def test_evaluate_cases_failure_and_resume(tmp_path):
    pairs = _write_cases(tmp_path, ["a", "bad", "c"])
    calls: list[str] = []

    def predict(image: Volume) -> np.ndarray:  # the image read once by evaluate_cases
        assert isinstance(image, Volume)
        calls.append(image.path.name)
        if image.path.name.startswith("bad"):
            raise RuntimeError("corrupt scan")
        np.testing.assert_array_equal(image.data, np.asarray(nib.load(image.path).dataobj))
        return np.rint(image.data).astype(np.int64)

    out = tmp_path / "eval"
    df = evaluate_cases(pairs, predict, out, method="oracle")
    assert len(calls) == 3
    assert len(df) == 3 * len(ZONES)
    failed = df[df["status"] == "failed"]
    assert set(failed["case_id"]) == {"bad"} and len(failed) == len(ZONES)
    assert failed["error"].str.contains("corrupt scan").all()
    ok = df[(df["status"] == "ok") & (df["zone_name"] == "PZ")]
    assert ok["dice"].tolist() == pytest.approx([1.0, 1.0])
    on_disk = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert len(on_disk) == len(df)

    # resume: ok cases are not predicted again; the failed one is retried, a new case is scored
    pairs += _write_cases(tmp_path, ["d"])
    df2 = evaluate_cases(pairs, predict, out, method="oracle")
    assert calls[3:] == ["bad_t2.nii.gz", "d_t2.nii.gz"]
    assert len(df2) == 4 * len(ZONES)
    # another method is evaluated independently in the same table
    df3 = evaluate_cases(pairs[:1], lambda p: np.zeros((20, 20, 20), int), out, method="empty")
    assert len(df3) == 5 * len(ZONES)
    # retry_failed (the default) re-runs only the failed case; without it nothing runs
    n = len(calls)
    evaluate_cases(pairs, predict, out, method="oracle", retry_failed=False)
    assert calls[n:] == []
    evaluate_cases(pairs, predict, out, method="oracle")
    assert calls[n:] == ["bad_t2.nii.gz"]

    summ = summary_table(df3)
    pz = summ[(summ["method"] == "oracle") & (summ["zone_name"] == "PZ")].iloc[0]
    assert pz["n_ok"] == 3 and pz["n_failed"] == 1
    assert pz["dice_mean"] == pytest.approx(1.0) and pz["dice_std"] == pytest.approx(0.0)
    assert pz["dice"] == "1.000 ± 0.000"
    empty_pz = summ[(summ["method"] == "empty") & (summ["zone_name"] == "PZ")].iloc[0]
    assert empty_pz["dice_mean"] == 0.0 and empty_pz["n_missed"] == 1
    # the missed PZ is scored at the field-of-view diagonal (read back from cases.csv)
    assert empty_pz["hd95_mean"] == pytest.approx(fov_diagonal((20, 20, 20), SPACING))
    assert math.isnan(empty_pz["hd95_present_mean"]) and empty_pz["hd95_present"] == "n/a"
    dpu = summ[(summ["method"] == "oracle") & (summ["zone_name"] == "DPU")].iloc[0]
    assert math.isnan(dpu["dice_mean"]) and dpu["dice"] == "n/a"  # absent everywhere

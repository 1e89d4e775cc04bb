"""Tests for dbsam.evaluate: Dice with the authors' empty-mask convention, the authors' NSD
(``nsd_paper``: 256² grid, unit spacing, tolerance 1 voxel) on hand cases, and ours (``nsd_2mm``:
native grid and spacing), and the summary of both."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medcl.dbsam.evaluate import (
    CASE_COLUMNS,
    dice_nsd,
    dice_score,
    nsd_native,
    nsd_paper,
    scores,
    summary_table,
    to_prompt_grid,
)


def _cube(shape, lo, size) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tuple(slice(a, a + size) for a in lo)] = True
    return m


def test_dice_both_empty_is_one_as_the_authors():
    empty = np.zeros((3, 8, 8), bool)
    full = _cube((3, 8, 8), (0, 2, 2), 3)
    assert dice_score(empty, empty) == 1.0
    assert dice_score(full, empty) == 0.0 and dice_score(empty, full) == 0.0
    half = full.copy()
    half[:, 2] = False  # 2/3 of the cube
    assert dice_score(half, full) == pytest.approx(2 * 18 / (18 + 27))
    assert dice_nsd(empty, empty, (1, 1, 1), 2.0) == (1.0, 1.0)
    assert nsd_paper(empty, empty) == 1.0 and nsd_paper(full, empty) == 0.0


def test_nsd_paper_on_hand_cases():
    # native 512 x 512 slices, 0.25 mm pixels; the 256² grid halves them
    shape = (12, 512, 512)
    truth = _cube(shape, (2, 80, 80), 40)  # 8 x 20 x 20 voxels on the 256² grid, after z cut
    truth[10:] = False
    # an exact copy plus a far-away copy of the same size: every truth surface element is
    # within tolerance, half of the prediction's are not -> (S + S) / (S + 2 S) = 2/3
    far = truth | np.roll(truth, (300, 300), axis=(1, 2))
    assert nsd_paper(far, truth) == pytest.approx(2 / 3, abs=1e-5)
    # a shift of 2 native px is 1 voxel on the 256² grid: within the tolerance of 1 voxel
    assert nsd_paper(np.roll(truth, 2, axis=2), truth) == pytest.approx(1.0)
    # a shift of 6 native px (1.5 mm) is 3 voxels on the 256² grid: outside the authors'
    # tolerance, inside our 2 mm one
    moved = np.roll(truth, 6, axis=2)
    assert nsd_paper(moved, truth) < 0.9
    assert nsd_native(moved, truth, (1.0, 0.25, 0.25), 2.0) == pytest.approx(1.0)
    row = scores(moved, truth, (1.0, 0.25, 0.25), 2.0)
    assert set(row) == {"dice", "nsd_paper", "nsd_2mm"}
    assert row["nsd_2mm"] == pytest.approx(1.0) and row["nsd_paper"] < 0.9


def test_prompt_grid_resampling():
    vol = np.zeros((2, 512, 300), bool)
    vol[:, 100:104, :] = True
    grid = to_prompt_grid(vol)
    assert grid.shape == (2, 256, 256)
    assert grid[:, 50:52].all() and grid.sum() == 2 * 2 * 256
    assert to_prompt_grid(np.ones((30, 40), bool)).shape == (1, 256, 256)


def test_summary_has_both_nsds():
    assert {"nsd_paper", "nsd_2mm"} <= set(CASE_COLUMNS) and "nsd" not in CASE_COLUMNS
    table = pd.DataFrame([
        {"method": "dbsam", "case_id": "a", "label": 1, "dice": 0.8, "nsd_paper": 0.6,
         "nsd_2mm": 0.9, "status": "ok"},
        {"method": "dbsam", "case_id": "b", "label": 1, "dice": 0.6, "nsd_paper": 0.4,
         "nsd_2mm": 0.7, "status": "ok"}])
    summary = summary_table(table)
    first = summary.iloc[0]
    assert first.nsd_paper == pytest.approx(0.5) and first.nsd_2mm == pytest.approx(0.8)
    assert first.nsd_paper_std == pytest.approx(0.1)

"""``medcl evaluate --app dbsam`` on a folder laid out as the MSD cards say, and
``dbsam segment`` from a DICOM series to a DICOM SEG (through medcl.io, no dbsam code)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # trains a tiny DB-SAM (about 10-40 s, with torch's import)

TINY = ["--arch", "tiny", "--image-size", "128", "--epochs", "1", "--batch-size", "4"]


@pytest.fixture(scope="module")
def msd(tmp_path_factory) -> Path:
    """Task09_Spleen/imagesTr + labelsTr under a parent folder (the archive as extracted)."""
    from medcl.dbsam.phantom import write_phantoms

    images, labels = write_phantoms(tmp_path_factory.mktemp("ph"), n=3, seed=0,
                                    shape=(48, 48, 10))
    root = tmp_path_factory.mktemp("data")
    task = root / "Task09_Spleen"
    task.mkdir()
    images.rename(task / "imagesTr")
    labels.rename(task / "labelsTr")
    return root


@pytest.fixture(scope="module")
def run(msd, tmp_path_factory) -> Path:
    from medcl.cli import main

    out = tmp_path_factory.mktemp("run") / "run"
    task = msd / "Task09_Spleen"
    old = sys.argv
    sys.argv = ["medcl", "dbsam", "train", "--images", str(task / "imagesTr"), "--labels",
                str(task / "labelsTr"), "--out", str(out), *TINY]
    try:
        main()
    except SystemExit as stop:
        assert not stop.code, stop.code
    finally:
        sys.argv = old
    return out


def test_card_dispatch_on_msd_layout(run, msd, tmp_path, medcl_cli):
    import pandas as pd

    out = tmp_path / "ev"
    code, _, err = medcl_cli(["evaluate", "--card", "msd_task09_spleen", "--root", msd,
                              "--app", "dbsam", "--model", run, "--out", out,
                              "--progress", "quiet"])
    assert code == 0, err
    table = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert sorted(table.case_id.unique()) == ["case_000", "case_001", "case_002"]
    assert (table.status == "ok").all()
    assert table.dice.between(0, 1).all() and table.nsd_2mm.between(0, 1).all()
    assert len(list((out / "cases").glob("*.npz"))) == 3
    assert (out / "report.html").is_file()


def test_dicom_series_in_seg_out(run, msd, tmp_path, medcl_cli):
    import highdicom as hd

    from medcl.io.dicom import write_series
    from medcl.io.nifti import read_labels, read_volume

    image = msd / "Task09_Spleen" / "imagesTr" / "case_000.nii.gz"
    vol = read_volume(image)
    lab = read_labels(msd / "Task09_Spleen" / "labelsTr" / "case_000.nii.gz", like=vol)
    write_series(tmp_path / "ct", np.round(vol.data), vol.affine, modality="CT")
    idx = np.argwhere(lab.data > 0)
    box = ",".join(str(int(v)) for v in (*idx.min(0), *idx.max(0)))
    out = tmp_path / "seg.dcm"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", tmp_path / "ct",
                              "--box", box, "--out", out])
    assert code == 0, err
    seg = hd.seg.segread(out)
    assert seg.Modality == "SEG"
    uids = {ref.ReferencedSOPInstanceUID
            for s in seg.ReferencedSeriesSequence for ref in s.ReferencedInstanceSequence}
    assert len(uids) == vol.shape[2]  # every source slice referenced

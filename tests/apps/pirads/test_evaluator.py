"""``medcl evaluate --app pirads`` on folders laid out as the prostate158 card says, and
``pirads segment`` from a DICOM series to a DICOM SEG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medcl.io import RunFolder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """An untrained tiny network saved as a run (the evaluation path, not its accuracy)."""
    import torch

    from medcl.pirads.config import PiradsConfig
    from medcl.pirads.train import build_model

    torch.manual_seed(0)
    cfg = PiradsConfig(filters=[4, 8, 8, 16, 16], crop=[64, 64, 16])
    folder = RunFolder.create(tmp_path_factory.mktemp("run"))
    folder.write_config(cfg, seed=0)
    folder.save_model(build_model(cfg, "dual").state_dict())
    return folder.root


@pytest.fixture(scope="module")
def prostate158(tmp_path_factory) -> Path:
    """Two test cases as Prostate158 lays them out: test/<case>/t2.nii.gz (case 101: t2/, a
    DICOM series) and t2_anatomy_reader1.nii.gz in its own codes (1 TZ, 2 PZ)."""
    from medcl.io.nifti import read_labels, read_volume, write_volume
    from medcl.pirads.phantom import write_phantoms

    images, labels = write_phantoms(tmp_path_factory.mktemp("ph"), n=2, seed=1, shape=(72, 72, 12),
                                    spacing=(0.5, 0.5, 3.0))
    root = tmp_path_factory.mktemp("p158")
    for img in sorted(images.glob("*.nii.gz")):
        cid = img.name.split(".")[0]
        vol = read_volume(img)
        lab = read_labels(labels / img.name, like=vol).data
        own = np.where(lab == 1, 2, np.where(lab >= 2, 1, 0)).astype(np.uint8)
        case = root / "test" / f"{int(cid[-3:]) + 100:03d}"
        case.mkdir(parents=True)
        if cid.endswith("1"):  # the second case's T2 as a DICOM series folder t2/
            from medcl.io.dicom import write_series

            write_series(case / "t2", vol.data, vol.affine,
                         slope=float(np.abs(vol.data).max()) / 30000)
        else:
            write_volume(case / "t2.nii.gz", vol.data, vol)
        write_volume(case / "t2_anatomy_reader1.nii.gz", own, vol, dtype=np.uint8)
    return root


def test_card_dispatch_on_prostate158_layout(tiny_run, prostate158, tmp_path, medcl_cli):
    import pandas as pd

    out = tmp_path / "ev"
    code, stdout, err = medcl_cli(["evaluate", "--card", "prostate158", "--root", prostate158,
                                   "--app", "pirads", "--model", tiny_run, "--out", out,
                                   "--split", "test", "--progress", "quiet"])
    assert code == 0, err
    table = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert sorted(table.case_id.unique()) == ["100", "101"]
    assert set(table.split) == {"test"}
    assert (table.status == "ok").all()
    labelled = table[table.labelled]
    assert set(labelled.zone_name) == {"PZ", "TZ"}
    assert labelled.dice.between(0, 1).all()
    assert table[~table.labelled].dice.isna().all()  # DPU/AFS are not Prostate158 labels
    assert (out / "report.html").is_file() and "report.html" in stdout
    page = (out / "report.html").read_text()
    assert "DSC_TZ" in page and "0.877" in page  # the card's published numbers beside ours


def test_card_without_data_under_root(tiny_run, tmp_path, medcl_cli):
    code, _, err = medcl_cli(["evaluate", "--card", "prostate158", "--root", tmp_path,
                              "--app", "pirads", "--model", tiny_run, "--out", tmp_path / "e"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no prostate158 data here" in err and "zenodo" in err.lower()


def test_segment_dicom_series_to_seg(tiny_run, prostate158, tmp_path, medcl_cli):
    import highdicom as hd

    from medcl.io.dicom import write_series
    from medcl.io.nifti import read_volume

    vol = read_volume(prostate158 / "test" / "100" / "t2.nii.gz")
    assert (prostate158 / "test" / "101" / "t2").is_dir()  # case 101 came in as DICOM
    write_series(tmp_path / "t2", np.round(vol.data), vol.affine)
    out = tmp_path / "zones.dcm"
    code, _, err = medcl_cli(["pirads", "segment", "--model", tiny_run, "--t2", tmp_path / "t2",
                              "--out", out])
    assert code == 0, err
    seg = hd.seg.segread(out)
    assert seg.Modality == "SEG" and seg.NumberOfFrames >= 1
    # two series in one folder: refused without --series, read with it
    write_series(tmp_path / "t2" / "other", np.round(vol.data), vol.affine,
                 series_uid="1.2.826.0.1.3680043.8.498.1")
    code, _, err = medcl_cli(["pirads", "segment", "--model", tiny_run, "--t2", tmp_path / "t2",
                              "--out", tmp_path / "z3.dcm"])
    assert code == 2 and "holds 2 image series" in err and "--series" in err
    code, _, err = medcl_cli(["pirads", "segment", "--model", tiny_run, "--t2", tmp_path / "t2",
                              "--series", "1.2.826.0.1.3680043.8.498.1", "--out",
                              tmp_path / "z3.dcm"])
    assert code == 0, err
    assert hd.seg.segread(tmp_path / "z3.dcm").ReferencedSeriesSequence[0].SeriesInstanceUID \
        == "1.2.826.0.1.3680043.8.498.1"
    # a NIfTI input cannot give a SEG (no instances to reference): refused before any work
    code, _, err = medcl_cli(["pirads", "segment", "--model", tiny_run, "--t2",
                              prostate158 / "test" / "100" / "t2.nii.gz", "--out",
                              tmp_path / "z2.dcm"])
    assert code == 2 and "--out must end in" in err

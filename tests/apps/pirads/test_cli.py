"""``medcl pirads`` end to end on phantoms written here, and bad inputs (exit 2, file named,
nothing half-written)."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

TINY = ["--epochs", "1", "--cotrain-epochs", "1", "--filters", "4,8,8,16,16", "--crop",
        "64,64,16"]


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from pirads.phantom import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("ph"), n=3, seed=0)


def test_train_segment_evaluate(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    run = tmp_path / "run"
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", labels,
                              "--unlabelled", images, "--out", run, *TINY])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "unet/model.pt"):
        assert (run / name).exists(), name
    assert set(pd.read_csv(run / "metrics.csv").stage) == {"stage1", "stage2", "single"}

    t2 = images / "case_000.nii.gz"
    out, sectors, report = tmp_path / "z.nii.gz", tmp_path / "s.nii.gz", tmp_path / "r.json"
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2, "--out", out,
                              "--sectors", sectors, "--report", report])
    assert code == 0, err
    src, zones, smap = nib.load(t2), nib.load(out), nib.load(sectors)
    assert zones.shape == src.shape and np.allclose(zones.affine, src.affine)
    z, s = np.asarray(zones.dataobj), np.asarray(smap.dataobj)
    assert ((z > 0) == (s > 0)).all()  # the sector map covers exactly the predicted gland
    info = json.loads(report.read_text())
    assert set(info["volumes_ml"]) == {"PZ", "TZ", "DPU", "AFS"}

    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", images,
                              "--labels", labels, "--baseline", "unet", "--out",
                              tmp_path / "eval"])
    assert code == 0, err
    cases = pd.read_csv(tmp_path / "eval" / "cases.csv")
    assert set(cases.method) == {"dual-path", "single-path UNet"} and len(cases) == 2 * 3 * 4

    # the same labels in Prostate158's codes (1 TZ, 2 PZ; urethra and stroma inside TZ):
    # read through the card, DPU and AFS are "not labelled", not Dice 0
    p158 = tmp_path / "p158"
    p158.mkdir()
    for f in sorted(labels.iterdir()):
        img = nib.load(f)
        zones = np.asarray(img.dataobj)
        nib.save(nib.Nifti1Image(np.where(zones == 1, 2, np.where(zones > 1, 1, 0))
                                 .astype(np.uint8), img.affine), p158 / f.name)
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", images,
                              "--labels", p158, "--card", "prostate158", "--out",
                              tmp_path / "eval158"])
    assert code == 0, err
    cases = pd.read_csv(tmp_path / "eval158" / "cases.csv")
    assert cases[cases.zone_name.isin(["DPU", "AFS"])].dice.isna().all()
    assert not cases[cases.zone_name.isin(["DPU", "AFS"])].labelled.any()
    assert cases[cases.zone_name == "PZ"].dice.notna().all()
    assert "not labelled" in (tmp_path / "eval158" / "report.md").read_text()
    # without the card the Prostate158 codes read as ours and mean something else
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", p158,
                              "--label-map", "1:2,2:1", "--no-baseline", "--out",
                              tmp_path / "run158", *TINY])
    assert code == 0, err
    assert "not labelled: DPU, AFS" in (tmp_path / "run158" / "report.md").read_text()


def test_bad_inputs(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    out = tmp_path / "out"
    bad_images = tmp_path / "imgs"
    bad_images.mkdir()
    (bad_images / "case_000.nii.gz").write_bytes(b"garbage")
    code, _, err = medcl_cli(["pirads", "train", "--images", bad_images, "--labels", labels,
                              "--out", out, *TINY])
    assert code == 2 and "case_000.nii.gz" in err

    bad_labels = tmp_path / "labs"
    bad_labels.mkdir()
    for f in sorted(labels.iterdir()):
        img = nib.load(f)
        data = np.asarray(img.dataobj).copy()
        data[0, 0, 0] = 9  # an unknown zone code
        nib.save(nib.Nifti1Image(data, img.affine), bad_labels / f.name)
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", bad_labels,
                              "--out", out, *TINY])
    assert code == 2 and "9" in err
    # a label map that does not list a code in the files: named, before any training
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", labels,
                              "--label-map", "1:1,2:2", "--out", out, *TINY])
    assert code == 2 and "case_000.nii.gz" in err and "[3, 4]" in err
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", labels,
                              "--label-map", "1:2", "--card", "prostate158", "--out", out,
                              *TINY])
    assert code == 2 and "not both" in err

    missing = tmp_path / "nolabels"
    missing.mkdir()
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", missing,
                              "--out", out, *TINY])
    assert code == 2 and "case_000" in err
    assert not out.exists()

    code, _, err = medcl_cli(["pirads", "segment", "--model", tmp_path, "--t2",
                              images / "case_000.nii.gz", "--out", tmp_path / "z.nii.gz"])
    assert code == 2 and "config.yaml" in err  # a folder that is not a run
    assert not (tmp_path / "z.nii.gz").exists()

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
    from medcl.pirads.phantom import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("ph"), n=3, seed=0)


def test_train_segment_evaluate(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    run = tmp_path / "run"
    code, _, err = medcl_cli(["pirads", "train", "--images", images, "--labels", labels,
                              "--unlabelled", images, "--out", run, *TINY])
    assert code == 0, err
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "unet/model.pt",
                 "last.pt", "unet/last.pt", "stage1/model.pt", "stage1/last.pt", "split.json"):
        assert (run / name).exists(), name
    metrics = pd.read_csv(run / "metrics.csv")
    assert set(metrics.stage) == {"stage1", "stage2", "single"}
    assert metrics.val_dice_pz.notna().all()  # 1 of the 3 cases validates every epoch
    # the first epoch's time and the run's projected total are said up front
    assert any(x.startswith("epoch 1 took") and "projected" in x for x in err.splitlines()), err

    t2 = images / "case_000.nii.gz"
    out, sectors, report = tmp_path / "z.nii.gz", tmp_path / "s.nii.gz", tmp_path / "r.json"
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2, "--out", out,
                              "--sectors", sectors, "--report", report])
    assert code == 0, err
    src, zones, smap = nib.load(t2), nib.load(out), nib.load(sectors)
    assert zones.shape == src.shape and np.allclose(zones.affine, src.affine)
    for img in (zones, smap):  # written by medcl.io.nifti.write_volume like the input
        assert img.shape == src.shape and np.allclose(img.affine, src.affine)
        assert (int(img.header["qform_code"]), int(img.header["sform_code"])) == (
            int(src.header["qform_code"]), int(src.header["sform_code"]))
    z, s = np.asarray(zones.dataobj), np.asarray(smap.dataobj)
    assert ((z > 0) == (s > 0)).all()  # the sector map covers exactly the predicted gland
    info = json.loads(report.read_text())
    assert set(info["volumes_ml"]) == {"PZ", "TZ", "DPU", "AFS"}

    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", images,
                              "--labels", labels, "--baseline", "unet", "--out",
                              tmp_path / "eval"])
    assert code == 0, err
    # stderr is not a terminal here: one plain line as each case starts and ends, per method
    lines = [x for x in err.splitlines() if x.startswith("[case ")]
    assert lines[0].startswith("[case 1/3] method=dual-path case_id=case_000: started")
    assert lines[1].startswith("[case 1/3] method=dual-path case_id=case_000: ok in")
    assert "ETA" in lines[1] and len(lines) == 2 * 2 * 3
    assert lines[-1].startswith("[case 3/3] method=single-path UNet case_id=case_002: ok in")
    cases = pd.read_csv(tmp_path / "eval" / "cases.csv")
    assert set(cases.method) == {"dual-path", "single-path UNet"} and len(cases) == 2 * 3 * 4
    # metrics.csv is a training run's per-epoch log: an evaluation names its tables itself
    assert not (tmp_path / "eval" / "metrics.csv").exists()
    assert (tmp_path / "eval" / "summary.csv").exists()
    assert "`cases.csv`" in (tmp_path / "eval" / "report.md").read_text()

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
                              tmp_path / "eval158", "--quiet"])
    assert code == 0, err
    assert "[case" not in err and "cases to run" not in err, err  # --quiet: no progress
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


def _copy_case(src_img, src_lab, images, labels, name, image=None, label=None, affine=None):
    """Write one case into images/labels, optionally replacing its image or label data."""
    img, lab = nib.load(src_img), nib.load(src_lab)
    images.mkdir(exist_ok=True)
    labels.mkdir(exist_ok=True)
    data = np.asarray(img.dataobj) if image is None else image
    nib.save(nib.Nifti1Image(data, img.affine), images / name)
    nib.save(nib.Nifti1Image(np.asarray(lab.dataobj) if label is None else label,
                             img.affine if affine is None else affine), labels / name)


@pytest.fixture(scope="module")
def run4d(phantoms, tmp_path_factory):
    """A tiny run trained with channel 0 of 4-D copies of the phantoms (no baseline), as
    `medcl pirads train --channel 0 --no-baseline` does."""
    from medcl.pirads.config import PiradsConfig
    from medcl.pirads.harness import train_run

    images, labels = phantoms
    root = tmp_path_factory.mktemp("run4d")
    img4, lab4 = root / "images", root / "labels"
    for f in sorted(images.iterdir()):
        t2 = np.asarray(nib.load(f).dataobj)
        _copy_case(f, labels / f.name, img4, lab4, f.name,
                   image=np.stack([t2, np.zeros_like(t2)], axis=-1))
    cfg = PiradsConfig(epochs=1, cotrain_epochs=1, filters=[4, 8, 8, 16, 16], crop=[64, 64, 16],
                       channel=0)
    train_run(cfg, img4, lab4, root / "run", baseline=False, progress=False)
    return img4, lab4, root / "run"


def test_channel_of_4d_files(run4d, tmp_path, medcl_cli):
    img4, lab4, run = run4d
    assert (run / "model.pt").exists()
    t2 = img4 / "case_000.nii.gz"
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2, "--out",
                              tmp_path / "z.nii.gz"])
    assert code == 2 and "--channel" in err
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2, "--out",
                              tmp_path / "z.nii.gz", "--channel", "0"])
    assert code == 0, err
    z, src = nib.load(tmp_path / "z.nii.gz"), nib.load(t2)
    assert z.shape == src.shape[:3] and np.allclose(z.affine, src.affine)
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", img4,
                              "--labels", lab4, "--out", tmp_path / "ev", "--channel", "0"])
    assert code == 0, err
    assert (pd.read_csv(tmp_path / "ev" / "cases.csv").status == "ok").all()
    # a model already in the folder: retraining into it is refused (its sub-models would
    # go stale), before anything is touched
    before = (run / "model.pt").read_bytes()
    code, _, err = medcl_cli(["pirads", "train", "--images", img4, "--labels", lab4,
                              "--out", run, "--channel", "0", *TINY])
    assert code == 2 and "already holds" in err
    assert (run / "model.pt").read_bytes() == before and not (run / "unet").exists()
    # the run has no baseline: evaluate --baseline unet says so up front, writes nothing
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", img4,
                              "--labels", lab4, "--out", tmp_path / "evb", "--channel", "0",
                              "--baseline", "unet"])
    assert code == 2 and "no-baseline" in err and not (tmp_path / "evb").exists()


def test_evaluate_shards_and_one_writer(run4d, tmp_path, medcl_cli):
    """--shard K/N scores a share of the cases, the merged table equals a one-process run's;
    a second process writing the same --out is refused, a stale lock taken over."""
    import json
    import socket
    import subprocess
    import sys
    import time

    img4, lab4, run = run4d
    args = ["pirads", "evaluate", "--model", run, "--images", img4, "--labels", lab4,
            "--channel", "0", "--quiet"]
    code, _, err = medcl_cli([*args, "--out", tmp_path / "whole"])
    assert code == 0, err
    sharded = tmp_path / "sharded"
    for k in (1, 0):
        code, _, err = medcl_cli([*args, "--out", sharded, "--shard", f"{k}/2"])
        assert code == 0, err
        ran = pd.read_csv(sharded / f"cases.rank{k}of2.csv", dtype={"case_id": str})
        assert sorted(set(ran.case_id)) == (["case_000", "case_002"] if k == 0 else ["case_001"])
    pd.testing.assert_frame_equal(pd.read_csv(sharded / "cases.csv"),
                                  pd.read_csv(tmp_path / "whole" / "cases.csv"))
    code, _, err = medcl_cli([*args, "--out", sharded, "--shard", "1-2"])
    assert code == 2 and "--shard" in err, err

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (sharded / ".cases.csv.rank0of1.lock").write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": time.time()}))
        code, _, err = medcl_cli([*args, "--out", sharded])
        assert code == 2 and "another medcl process" in err and str(holder.pid) in err, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = medcl_cli([*args[:-1], "--out", sharded])  # stale lock: taken over
    assert code == 0 and "3 of 3 cases already done" in err, err


def test_evaluate_bad_cases_retry_and_signature(phantoms, run4d, tmp_path, medcl_cli):
    images, labels = phantoms
    _, _, run = run4d
    src = nib.load(images / "case_000.nii.gz")
    t2 = np.asarray(src.dataobj).astype(np.float32)
    lab = np.asarray(nib.load(labels / "case_000.nii.gz").dataobj)
    img, labs = tmp_path / "images", tmp_path / "labels"
    pair = (images / "case_000.nii.gz", labels / "case_000.nii.gz", img, labs)
    _copy_case(*pair, "good.nii.gz")
    nan = t2.copy()
    nan[5, 5, 5] = np.nan
    _copy_case(*pair, "has_nan.nii.gz", image=nan)
    shifted = src.affine.copy()
    shifted[0, 3] += 5
    _copy_case(*pair, "shifted.nii.gz", affine=shifted)
    _copy_case(*pair, "frac.nii.gz", label=lab.astype(np.float32) + 0.5 * (lab == 1))
    out = tmp_path / "ev"
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", img,
                              "--labels", labs, "--out", out])
    assert code == 2 and "3 case(s) failed" in err and "rerun the same command" in err, err
    cases = pd.read_csv(out / "cases.csv").groupby("case_id").first()
    assert cases.status.to_dict() == {"frac": "failed", "good": "ok", "has_nan": "failed",
                                      "shifted": "failed"}
    assert "NaN" in cases.error["has_nan"] and "geometry differs" in cases.error["shifted"]
    assert "non-integer" in cases.error["frac"]

    # the broken scan is fixed: a rerun retries the failed cases only
    _copy_case(*pair, "has_nan.nii.gz")
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", img,
                              "--labels", labs, "--out", out])
    last = err.strip().splitlines()[-1]
    assert code == 2 and last.startswith("2 case(s) failed") and "has_nan" not in last, err
    again = pd.read_csv(out / "cases.csv")
    assert again.groupby("case_id").first().status.to_dict()["has_nan"] == "ok"
    assert len(again) == 4 * 4
    # other inputs into the same --out are refused, the table is left alone
    before = (out / "cases.csv").read_bytes()
    import shutil

    other_labels = shutil.copytree(labs, tmp_path / "labels_v2")
    for extra in (["--label-map", "1:1,2:2,3:3,4:4"], ["--labels", other_labels]):
        args = ["pirads", "evaluate", "--model", run, "--images", img, "--labels", labs,
                "--out", out, *extra]
        code, _, err = medcl_cli(args)
        assert code == 2 and "other inputs" in err and "another --out" in err, err
    assert (out / "cases.csv").read_bytes() == before

    # every case failed: a non-zero exit naming the table
    only_bad = tmp_path / "only_bad"
    _copy_case(*pair, "has_nan.nii.gz", image=nan)
    (img / "good.nii.gz").unlink()
    code, _, err = medcl_cli(["pirads", "evaluate", "--model", run, "--images", img,
                              "--labels", labs, "--out", only_bad])
    assert code == 2 and "every case failed" in err and "cases.csv" in err


def test_segment_outputs_checked_before_inference(phantoms, run4d, tmp_path, medcl_cli):
    images, _ = phantoms
    _, _, run = run4d
    t2 = images / "case_000.nii.gz"
    z = tmp_path / "z.nii.gz"
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for extra, match in ((["--sectors", z], "same file"), (["--report", z], "--report"),
                         (["--sectors", tmp_path / "s.csv"], "--sectors must end"),
                         (["--report", blocker / "r.json"], "cannot be written")):
        code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2,
                                  "--out", z, *extra])
        assert code == 2 and match in err, err
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", t2,
                              "--out", tmp_path / "z.txt"])
    assert code == 2 and "--out must end" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

    # warnings are one clean line each: a constant image, a non-axial scan
    flat = tmp_path / "flat.nii.gz"
    src = nib.load(t2)
    nib.save(nib.Nifti1Image(np.zeros(src.shape, np.float32), src.affine), flat)
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", flat,
                              "--out", tmp_path / "flat_z.nii.gz"])
    assert code == 0 and "warning:" in err and "constant" in err, err
    sag = tmp_path / "sag.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(src.dataobj), src.affine[[2, 1, 0, 3]]), sag)
    code, _, err = medcl_cli(["pirads", "segment", "--model", run, "--t2", sag,
                              "--out", tmp_path / "sag_z.nii.gz"])
    assert code == 0 and "warning:" in err and "axial" in err, err
    assert "UserWarning" not in err and "warnings.warn" not in err


def test_train_and_phantom_options_checked(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    out = tmp_path / "run"
    base = ["pirads", "train", "--images", images, "--labels", labels, "--out", out]
    for extra, match in ((["--filters", "4,8,8,16"], "--filters"),
                         (["--crop", "60,64,16"], "--crop"),
                         (["--crop", "64,64,18"], "multiple"),
                         (["--lr", "0"], "--lr"),
                         (["--preset", "gpu"], "--preset"),
                         (["--val-fraction", "1"], "--val-fraction"),
                         (["--patience", "-1"], "--patience")):
        code, _, err = medcl_cli([*base, *TINY, *extra])
        assert code == 2 and match in err, err
    assert not out.exists()
    code, _, err = medcl_cli(["pirads", "phantom", "--out", tmp_path / "ph", "--n", "0"])
    assert code == 2 and "--n" in err and "Traceback" not in err
    code, _, err = medcl_cli(["pirads", "phantom", "--out", images / "case_000.nii.gz"])
    assert code == 2 and "not a folder" in err


def test_train_preset_cpu(phantoms, tmp_path, medcl_cli, monkeypatch):
    """`--preset cpu` resolves to the demo's size (filters 8-64, crop 96x96x24), explicit
    --filters/--crop override a preset, and --help names it."""
    import medcl.pirads.harness as harness
    from medcl.pirads.config import PRESETS, PiradsConfig

    assert PiradsConfig.preset("cpu").filters == [8, 16, 32, 32, 64]
    assert PiradsConfig.preset("cpu").crop == [96, 96, 24] == PRESETS["cpu"]["crop"]
    assert PiradsConfig.preset("paper").crop == PiradsConfig().crop
    seen = []
    monkeypatch.setattr(harness, "train_run",
                        lambda cfg, *a, **k: seen.append(cfg) or tmp_path / "report.md")
    images, labels = phantoms
    base = ["pirads", "train", "--images", images, "--labels", labels, "--out", tmp_path / "r"]
    for extra in (["--preset", "cpu"], ["--preset", "cpu", "--crop", "64,64,16"], []):
        code, _, err = medcl_cli([*base, *extra])
        assert code == 0, err
    assert (seen[0].filters, seen[0].crop) == ([8, 16, 32, 32, 64], [96, 96, 24])
    assert (seen[1].filters, seen[1].crop) == ([8, 16, 32, 32, 64], [64, 64, 16])
    assert (seen[2].filters, seen[2].crop) == ([16, 32, 64, 128, 256], [168, 168, 32])
    assert seen[0].val_fraction == 0.2 and seen[0].patience == 0 and seen[0].augment
    code, out, _ = medcl_cli(["pirads", "train", "--help"])
    flat = " ".join(out.replace("│", " ").split())
    assert code == 0 and "--preset" in flat and "96x96x24" in flat and "--patience" in flat

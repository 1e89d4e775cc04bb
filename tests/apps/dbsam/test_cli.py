"""``medcl dbsam`` end to end on phantoms and images written here, and every bad input (exit 2,
the file named, nothing half-written, inputs untouched)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from helpers import oblique_lps_affine, write_nifti

TINY = ["--arch", "tiny", "--image-size", "128", "--epochs", "1", "--batch-size", "4"]


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from medcl.dbsam.phantom import write_phantoms

    return write_phantoms(tmp_path_factory.mktemp("ph"), n=3, seed=0, shape=(48, 48, 10))


@pytest.fixture(scope="module")
def run(phantoms, tmp_path_factory):
    from medcl.cli import main

    images, labels = phantoms
    out = tmp_path_factory.mktemp("run") / "run"
    import sys

    old = sys.argv
    sys.argv = ["medcl", "dbsam", "train", "--images", str(images), "--labels", str(labels),
                "--out", str(out), *TINY]
    try:
        main()
    except SystemExit as stop:
        assert not stop.code, stop.code
    finally:
        sys.argv = old
    return out


def _box(label_file, code=1):
    idx = np.argwhere(np.asarray(nib.load(label_file).dataobj) == code)
    return ",".join(str(int(v)) for v in (*idx.min(0), *idx.max(0)))


def test_train_writes_run_folder(run):
    for name in ("config.yaml", "metrics.csv", "model.pt", "report.md", "sam_base.pt"):
        assert (run / name).exists(), name
    text = (run / "report.md").read_text()
    assert "trainable" in text and "frozen" in text


def test_segment_box_keeps_geometry_and_input(run, phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    image = images / "case_000.nii.gz"
    before = _digest(image)
    out = tmp_path / "mask.nii.gz"
    code, stdout, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                                   "--box", _box(labels / "case_000.nii.gz"), "--out", out])
    assert code == 0, err
    src, res = nib.load(image), nib.load(out)
    assert res.shape == src.shape and np.allclose(res.affine, src.affine)
    assert nib.aff2axcodes(res.affine) == nib.aff2axcodes(src.affine)
    assert _digest(image) == before
    assert "embeddings computed" in stdout


def test_segment_box_slice_and_prompt_mask(run, phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    image, label = images / "case_001.nii.gz", labels / "case_001.nii.gz"
    truth = np.asarray(nib.load(label).dataobj)
    z = int((truth == 1).sum(axis=(0, 1)).argmax())
    idx = np.argwhere(truth[:, :, z] == 1)
    (x0, y0), (x1, y1) = idx.min(0), idx.max(0)
    out = tmp_path / "prop.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                              "--box-slice", f"{z}:{x0},{y0},{x1},{y1}", "--out", out,
                              "--label", "3"])
    assert code == 0, err
    assert set(np.unique(np.asarray(nib.load(out).dataobj))) <= {0, 3}

    out2 = tmp_path / "refined.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                              "--prompt-mask", label, "--out", out2])
    assert code == 0, err
    assert set(np.unique(np.asarray(nib.load(out2).dataobj))) <= {0, 1, 2}


def test_segment_2d_png(run, tmp_path, medcl_cli):
    from PIL import Image

    img = np.zeros((60, 80), np.uint8)
    img[20:40, 30:60] = 200
    Image.fromarray(img).save(tmp_path / "slice.png")
    out = tmp_path / "slice_mask.png"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image",
                              tmp_path / "slice.png", "--box-slice", "0:30,20,59,39",
                              "--out", out])
    assert code == 0, err
    assert np.asarray(Image.open(out)).shape == (60, 80)


def test_evaluate_with_baseline_resumes_and_survives_a_bad_case(run, phantoms, tmp_path,
                                                                 medcl_cli):
    images, labels = phantoms
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for f in sorted(images.iterdir())[:2]:
        (imgs / f.name).write_bytes(f.read_bytes())
    (imgs / "case_002.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "eval"
    args = ["dbsam", "evaluate", "--model", run, "--images", imgs, "--labels", labels,
            "--baseline", "sam", "--out", out]
    code, _, err = medcl_cli(args)
    assert code == 2 and "case(s) failed" in err and "case_002" in err, err
    cases = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert set(cases.method) == {"dbsam", "sam"}
    ok = cases[cases.status == "ok"]
    assert set(ok.case_id) == {"case_000", "case_001"} and set(ok.label) == {1, 2}
    failed = cases[cases.status == "failed"]
    assert set(failed.case_id) == {"case_002"} and "case_002" in failed.error.iloc[0]
    for col in ("dice", "nsd_paper", "nsd_2mm"):  # the authors' NSD and ours
        assert ok[col].between(0, 1).all(), col
    assert "nsd" not in cases.columns
    assert "nsd_paper" in (out / "summary.md").read_text()
    for name in ("summary.md", "summary.csv", "overlays.png", "report.md"):
        assert (out / name).exists(), name
    assert not (out / "metrics.csv").exists()  # metrics.csv is the per-epoch training log
    assert "`cases.csv`" in (out / "report.md").read_text()
    raw = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    for col in ("label", "pred_voxels", "truth_voxels", "slices"):  # integers, not 1.0 / NaN
        assert raw[col].str.fullmatch(r"\d*").all(), raw[col].tolist()
    assert (raw.label == "").sum() == 2  # the failed case's rows
    first = {n: (out / n).read_bytes() for n in ("cases.csv", "report.md", "overlays.png")}
    assert b"![overlays](overlays.png)" in first["report.md"]

    code, _, err = medcl_cli(args)  # resumes: nothing new to score, same outputs
    assert code == 2 and "case(s) failed" in err and "case_002" in err, err
    assert {n: (out / n).read_bytes() for n in first} == first

    # an interrupted run (case_001 not yet scored) ends with the report of a full run
    table = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    table[table.case_id != "case_001"].to_csv(out / "cases.csv", index=False)
    code, _, err = medcl_cli(args)
    assert code == 2 and "case(s) failed" in err and "case_002" in err, err
    assert (out / "report.md").read_bytes() == first["report.md"]
    assert (out / "overlays.png").read_bytes() == first["overlays.png"]
    again = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    pd.testing.assert_frame_equal(again.drop(columns="seconds"),
                                  cases.drop(columns="seconds"))

    # a fixed failed case is scored on the next run
    (imgs / "case_002.nii.gz").write_bytes((images / "case_002.nii.gz").read_bytes())
    code, _, err = medcl_cli(args)
    assert code == 0, err
    fixed = pd.read_csv(out / "cases.csv", dtype={"case_id": str})
    assert (fixed.status == "ok").all() and set(fixed.case_id) == {f"case_00{i}" for i in range(3)}
    assert "Failed cases" not in (out / "report.md").read_text()


def test_evaluate_refuses_an_out_of_other_inputs(run, phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    out = tmp_path / "eval"
    args = ["dbsam", "evaluate", "--images", images, "--labels", labels, "--out", out]
    code, _, err = medcl_cli([*args, "--model", run])
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    other = tmp_path / "other_run"
    other.mkdir()
    for f in run.iterdir():
        if f.is_file():
            (other / f.name).write_bytes(f.read_bytes())
    code, _, err = medcl_cli([*args, "--model", other])
    assert code == 2 and str(out) in err and "model" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_evaluate_progress_lines_quiet_shards_and_one_writer(run, phantoms, tmp_path,
                                                             medcl_cli):
    """Off a terminal (stderr captured here) one plain line when a case starts and one when it
    ends; --quiet prints none; --shard K/N scores a share and the merged table equals a
    one-process run's; a second process on the same --out is refused."""
    import json
    import socket
    import subprocess
    import sys
    import time

    images, labels = phantoms
    args = ["dbsam", "evaluate", "--model", run, "--images", images, "--labels", labels]
    whole = tmp_path / "whole"
    code, _, err = medcl_cli([*args, "--out", whole])
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0] == "3 cases to run"
    assert lines[1].startswith("[case 1/3] method=dbsam case_id=case_000: started (elapsed")
    assert re.match(r"\[case 1/3\] method=dbsam case_id=case_000: ok in [\d.]+ s \(elapsed "
                    r"\d:\d\d:\d\d, ETA \d:\d\d:\d\d\)$", lines[2]), lines[2]
    assert sum("started" in x for x in lines) == sum(": ok in" in x for x in lines) == 3

    quiet = tmp_path / "quiet"
    code, _, err = medcl_cli([*args, "--out", quiet, "--quiet"])
    assert code == 0 and err == "", err

    sharded = tmp_path / "sharded"
    for k in (1, 0):
        code, _, err = medcl_cli([*args, "--out", sharded, "--shard", f"{k}/2", "--quiet"])
        assert code == 0, err
    for f in ("cases.rank0of2.csv", "cases.rank1of2.csv"):
        assert (sharded / f).exists(), f
    pd.testing.assert_frame_equal(
        pd.read_csv(sharded / "cases.csv").drop(columns="seconds"),
        pd.read_csv(whole / "cases.csv").drop(columns="seconds"))
    code, _, err = medcl_cli([*args, "--out", sharded, "--shard", "2/2"])
    assert code == 2 and "shard" in err, err

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (quiet / ".cases.csv.rank0of1.lock").write_text(json.dumps(
            {"pid": holder.pid, "host": socket.gethostname(), "started": time.time()}))
        code, _, err = medcl_cli([*args, "--out", quiet])
        assert code == 2 and "another medcl process" in err and str(holder.pid) in err, err
    finally:
        holder.kill()
        holder.wait()
    code, _, err = medcl_cli([*args, "--out", quiet])  # the holder is gone: stale lock
    assert code == 0 and "3 of 3 cases already done" in err, err


@pytest.mark.parametrize("codes", [(1, 1), (2, 0), (0, 4)])
def test_segment_round_trip_keeps_nifti_geometry(run, tmp_path, medcl_cli, codes):
    """Oblique LPS volume in, mask out: same shape, affine, qform/sform codes (and affines)."""
    qform_code, sform_code = codes
    data = np.full((8, 40, 36), -400.0, np.float32)
    data[2:6, 10:25, 8:20] = 60.0
    affine = oblique_lps_affine((3.0, 0.7, 0.8))  # file axis 0, the thick one, is S-I
    image = write_nifti(tmp_path / "oblique.nii.gz", data, affine, qform_code=qform_code,
                        sform_code=sform_code)
    out = tmp_path / "mask.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                              "--box", "2,10,8,5,24,19", "--label", "7", "--out", out])
    assert code == 0, err
    src, res = nib.load(image), nib.load(out)
    assert res.shape == src.shape
    np.testing.assert_allclose(res.affine, src.affine, atol=1e-5)
    assert nib.aff2axcodes(res.affine) == nib.aff2axcodes(src.affine) != ("R", "A", "S")
    for key in ("qform_code", "sform_code"):
        assert int(res.header[key]) == int(src.header[key]), key
    assert (int(res.header["qform_code"]), int(res.header["sform_code"])) == codes
    if qform_code:
        np.testing.assert_allclose(res.get_qform(), src.get_qform(), atol=1e-5)
    if sform_code:
        np.testing.assert_allclose(res.get_sform(), src.get_sform(), atol=1e-5)
    np.testing.assert_allclose(res.header.get_zooms(), src.header.get_zooms(), atol=1e-6)
    mask = np.asarray(res.dataobj)
    assert res.get_data_dtype() == np.uint8 and set(np.unique(mask)) <= {0, 7}
    assert not mask[[0, 1, 6, 7]].any()  # only the boxed slices (file axis 0) are segmented


def _nifti(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), path)
    return path


@pytest.mark.parametrize("case", ["missing", "corrupt", "truncated", "4d", "nan"])
def test_segment_bad_image(run, tmp_path, medcl_cli, case):
    img = tmp_path / "img.nii.gz"
    data = np.random.default_rng(0).normal(size=(32, 32, 6)).astype(np.float32)
    if case == "corrupt":
        img.write_bytes(b"garbage")
    elif case == "truncated":
        _nifti(img, data)
        img.write_bytes(img.read_bytes()[:200])
    elif case == "4d":
        _nifti(img, np.stack([data, data], axis=3))
    elif case == "nan":
        data[3, 3, 3] = np.nan
        _nifti(img, data)
    out = tmp_path / "out.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", img,
                              "--box", "1,1,1,10,10,3", "--out", out])
    assert code == 2, err
    assert "img.nii.gz" in err
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize("box, flag, words", [
    ("--box", "5,5,2,4,10,3", "empty"),
    ("--box", "1,1,1,10,10,99", "outside"),
    ("--box-slice", "2:9,9,3,3", "empty"),
    ("--box-slice", "1:1,1,200,10", "outside"),
])
def test_segment_bad_box(run, phantoms, tmp_path, medcl_cli, box, flag, words):
    images, _ = phantoms
    out = tmp_path / "out.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image",
                              images / "case_000.nii.gz", box, flag, "--out", out])
    assert code == 2, err
    assert words in err.lower() and box in err
    assert not out.exists()


def test_train_bad_labels(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    bad = tmp_path / "labels"
    bad.mkdir()
    ref = nib.load(labels / "case_000.nii.gz")
    data = np.asarray(ref.dataobj)
    _nifti(bad / "case_000.nii.gz", data[:, :, :-1], ref.affine)  # shape mismatch
    shifted = ref.affine.copy()
    shifted[0, 3] += 5
    _nifti(bad / "case_001.nii.gz", data, shifted)  # affine mismatch
    _nifti(bad / "case_002.nii.gz", data, ref.affine)
    out = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", bad,
                              "--out", out, *TINY])
    assert code == 2 and "case_000.nii.gz" in err and "shape" in err
    assert not out.exists()
    _nifti(bad / "case_000.nii.gz", data, ref.affine)
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", bad,
                              "--out", out, *TINY])
    assert code == 2 and "case_001.nii.gz" in err and "affine" in err
    assert not out.exists()


def test_checkpoint_of_another_size(phantoms, tmp_path, medcl_cli):
    import torch

    from medcl.dbsam.model import build_sam

    ckpt = tmp_path / "sam_tiny.pth"
    torch.save(build_sam("tiny", 128).state_dict(), ckpt)
    images, _ = phantoms
    out = tmp_path / "out.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--sam-checkpoint", ckpt, "--arch", "vit_b",
                              "--image", images / "case_000.nii.gz", "--box", "1,1,1,9,9,3",
                              "--out", out])
    assert code == 2 and "sam_tiny.pth" in err
    assert not out.exists()


README = Path(__file__).parents[3] / "README.md"
COMMANDS = ["phantom", "train", "segment", "evaluate"]
FLAG = re.compile(r"--[a-z][a-z0-9-]*")  # --n too


def _readme_usage() -> dict[str, str]:
    """The usage block of README.md's `medcl dbsam` section: ``{command: its lines joined}``
    (a command's first line starts with ``medcl dbsam COMMAND``, continuation lines follow)."""
    section = README.read_text(encoding="utf-8").split("### `medcl dbsam`", 1)[1]
    section = section.split("\n### ", 1)[0]
    block = section.split("```", 2)[1]
    usage: dict[str, str] = {}
    command = None
    for line in block.splitlines():
        start = re.match(r"medcl dbsam ([a-z-]+)", line)
        if start:
            command = start.group(1)
            assert command not in usage, f"README shows `medcl dbsam {command}` twice"
            usage[command] = line
        elif line.strip():
            assert command is not None, f"README usage line outside a command: {line!r}"
            usage[command] += " " + line
    return usage


def _help_flags(help_text: str) -> set[str]:
    """Long options of a ``--help`` text, less ``--help`` and the ``--no-X`` of a flag ``--X``."""
    flags = set(FLAG.findall(help_text)) - {"--help"}
    return {f for f in flags if not (f.startswith("--no-") and "--" + f[5:] in flags)}


def test_readme_usage_lists_every_command():
    import typer

    from medcl.dbsam.cli import app

    commands = set(typer.main.get_command(app).commands) - {"about"}  # about: every app's
    assert set(_readme_usage()) == commands == set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_help_matches_readme_usage(command, medcl_cli):
    code, out, _ = medcl_cli(["dbsam", command, "--help"])
    assert code == 0
    offered = _help_flags(out)
    shown = set(FLAG.findall(_readme_usage()[command]))
    assert shown - offered == set(), f"README shows options `{command} --help` lacks"
    assert offered - shown == set(), f"`{command} --help` has options README.md does not show"
    if command == "segment":
        for flag in ("--model", "--sam-checkpoint", "--image", "--box", "--box-slice",
                     "--prompt-mask", "--out"):
            assert flag in out


def test_train_and_evaluate_on_2d_png_folders(tmp_path, medcl_cli):
    from PIL import Image

    rng = np.random.default_rng(0)
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for i in range(3):
        img = rng.integers(0, 60, size=(50, 70)).astype(np.uint8)
        y0, x0 = rng.integers(5, 20), rng.integers(5, 35)
        img[y0:y0 + 20, x0:x0 + 25] += 150
        mask = np.zeros((50, 70), np.uint8)
        mask[y0:y0 + 20, x0:x0 + 25] = 255  # a 0/255 mask reads as label 1
        Image.fromarray(np.stack([img] * 3, axis=2)).save(images / f"img{i}.png")
        Image.fromarray(mask).save(labels / f"img{i}.png")
    run = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", labels,
                              "--out", run, *TINY])
    assert code == 0, err
    code, _, err = medcl_cli(["dbsam", "evaluate", "--model", run, "--images", images,
                              "--labels", labels, "--out", tmp_path / "eval"])
    assert code == 0, err
    cases = pd.read_csv(tmp_path / "eval" / "cases.csv")
    assert len(cases) == 3 and (cases.status == "ok").all() and set(cases.label) == {1}


def test_preset_help_lists_every_preset():
    from medcl.dbsam.cli import PRESETS
    from medcl.dbsam.preprocess import CT_PRESETS

    names = [p.split(" ")[0] for p in PRESETS.split(", ")]
    assert names == list(CT_PRESETS)


def test_mr_phantoms_train_and_segment(tmp_path, medcl_cli):
    from medcl.dbsam.phantom import write_phantoms

    images, labels = write_phantoms(tmp_path / "mr", n=2, seed=1, shape=(40, 40, 8),
                                    modality="mr")
    run = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", labels,
                              "--modality", "mr", "--out", run, *TINY])
    assert code == 0, err
    out = tmp_path / "m.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image",
                              images / "case_000.nii.gz", "--box",
                              _box(labels / "case_000.nii.gz"), "--out", out])
    assert code == 0, err
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image",
                              images / "case_000.nii.gz", "--box", "1,1,1,5,5,2",
                              "--preset", "lung", "--out", tmp_path / "x.nii.gz"])
    assert code == 2 and "preset" in err.lower()


def test_train_resume_continues_the_run(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    args = ["dbsam", "train", "--images", images, "--labels", labels, "--out", tmp_path / "r",
            "--arch", "tiny", "--image-size", "64", "--batch-size", "8"]
    code, _, err = medcl_cli([*args, "--epochs", "1"])
    assert code == 0, err
    first = pd.read_csv(tmp_path / "r" / "metrics.csv")
    # a longer schedule resumed from the checkpoint keeps epoch 1 and trains epoch 2 only
    code, _, err = medcl_cli([*args, "--epochs", "2", "--resume"])
    assert code == 0, err
    after = pd.read_csv(tmp_path / "r" / "metrics.csv")
    assert list(after.epoch) == [1, 2]
    assert after.loss.iloc[0] == pytest.approx(first.loss.iloc[0])
    assert (tmp_path / "r" / "model.pt").exists()


def test_segment_several_boxes_make_a_label_map(run, phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    image, label = images / "case_002.nii.gz", labels / "case_002.nii.gz"
    out = tmp_path / "map.nii.gz"
    code, stdout, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                                   "--box", f"1={_box(label, 1)}", "--box",
                                   f"2={_box(label, 2)}", "--out", out])
    assert code == 0, err
    found = set(np.unique(np.asarray(nib.load(out).dataobj)))
    assert found <= {0, 1, 2}
    n_slices = len({int(v) for b in (_box(label, 1), _box(label, 2))
                    for v in range(int(b.split(",")[2]), int(b.split(",")[5]) + 1)})
    assert f"{n_slices} slice embeddings computed" in stdout  # shared slices embedded once
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                              "--box", "x=1,1,1,5,5,2", "--out", out])
    assert code == 2 and "--box" in err


def _bad_label_set(phantoms, root):
    """case_000: 4-D image (two channels); case_001: label without structures; case_002: a
    label with code -1."""
    images, labels = phantoms
    imgs, labs = root / "images", root / "labels"
    imgs.mkdir(parents=True)
    labs.mkdir()
    for i in range(3):
        name = f"case_00{i}.nii.gz"
        src, lab = nib.load(images / name), nib.load(labels / name)
        data, codes = np.asarray(src.dataobj), np.asarray(lab.dataobj).astype(np.int16)
        if i == 0:
            data = np.stack([data, data], axis=3)
        elif i == 1:
            codes[:] = 0
        else:
            codes[codes == 2] = -1
        _nifti(imgs / name, data, src.affine)
        _nifti(labs / name, codes, src.affine)
    return imgs, labs


def test_evaluate_lists_bad_labels_and_takes_a_channel(run, phantoms, tmp_path, medcl_cli):
    imgs, labs = _bad_label_set(phantoms, tmp_path / "set")
    args = ["dbsam", "evaluate", "--model", run, "--images", imgs, "--labels", labs]
    code, _, err = medcl_cli([*args, "--out", tmp_path / "e1"])
    assert code == 2 and err.strip().splitlines()[-1].startswith("3 case(s) failed"), err
    cases = pd.read_csv(tmp_path / "e1" / "cases.csv", dtype={"case_id": str})
    assert (cases.status == "failed").all() and list(cases.case_id) == ["case_000", "case_001",
                                                                        "case_002"]
    errors = dict(zip(cases.case_id, cases.error, strict=True))
    assert "--channel" in errors["case_000"]
    assert "label has no structures" in errors["case_001"]
    assert str(labs / "case_001.nii.gz") in errors["case_001"]
    assert "outside 0..255" in errors["case_002"] and str(labs / "case_002.nii.gz") in \
        errors["case_002"]
    code, _, err = medcl_cli([*args, "--channel", "1", "--out", tmp_path / "e2"])
    assert code == 2 and err.strip().splitlines()[-1].startswith("2 case(s) failed"), err
    cases = pd.read_csv(tmp_path / "e2" / "cases.csv", dtype={"case_id": str})
    assert set(cases.case_id[cases.status == "ok"]) == {"case_000"}


def test_train_refuses_negative_label_codes(phantoms, tmp_path, medcl_cli):
    imgs, labs = _bad_label_set(phantoms, tmp_path / "set")
    (imgs / "case_000.nii.gz").unlink()
    (imgs / "case_001.nii.gz").unlink()
    out = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", imgs, "--labels", labs,
                              "--out", out, *TINY])
    assert code == 2 and "case_002.nii.gz" in err and "outside 0..255" in err, err
    assert not out.exists()


def test_segment_prompt_mask_errors_name_the_prompt_file(run, phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    image = images / "case_000.nii.gz"
    lab = nib.load(labels / "case_000.nii.gz")
    codes = np.asarray(lab.dataobj).astype(np.int16)
    out = tmp_path / "out.nii.gz"
    for name, data, words in [("empty.nii.gz", np.zeros_like(codes), "empty"),
                              ("neg.nii.gz", np.where(codes == 2, -1, codes), "outside 0..255"),
                              ("big.nii.gz", np.where(codes == 2, 300, codes), "outside 0..255")]:
        prompt = _nifti(tmp_path / name, data, lab.affine)
        code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", image,
                                  "--prompt-mask", prompt, "--out", out])
        assert code == 2 and str(prompt) in err and words in err, err
        assert "case_000" not in err and "Traceback" not in err
        assert not out.exists()


@pytest.mark.parametrize("value", ["0", "256", "300", "-1"])
def test_segment_label_out_of_range(run, phantoms, tmp_path, medcl_cli, value):
    images, labels = phantoms
    out = tmp_path / "out.nii.gz"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image",
                              images / "case_000.nii.gz", "--box",
                              _box(labels / "case_000.nii.gz"), "--label", value, "--out", out])
    assert code == 2 and "--label" in err and "1 to 255" in err, err
    assert not out.exists()


def test_train_refuses_to_overwrite_a_trained_run(run, phantoms, medcl_cli):
    images, labels = phantoms
    before = _digest(run / "model.pt")
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", labels,
                              "--out", run, *TINY])
    assert code == 2 and "--resume" in err and str(run) in err, err
    assert _digest(run / "model.pt") == before


def test_train_no_sample_error_names_real_options(phantoms, tmp_path, medcl_cli):
    images, labels = phantoms
    out = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", labels,
                              "--label-codes", "7", "--out", out, *TINY])
    assert code == 2 and "--label-codes" in err, err
    assert "--min-pixels" not in err and "--labels " not in err
    assert not out.exists()


@pytest.mark.parametrize("device", ["cuda", "gpu"])
def test_train_checks_device_before_writing(phantoms, tmp_path, medcl_cli, monkeypatch,
                                            device):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    images, labels = phantoms
    out = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", images, "--labels", labels,
                              "--device", device, "--out", out, *TINY])
    assert code == 2 and "device" in err.lower() and "Traceback" not in err, err
    assert not out.exists()


def test_segment_dicom_series_in_seg_out(run, phantoms, tmp_path, medcl_cli):
    """A DICOM series folder in, a DICOM SEG referencing it out; --series among several."""
    import highdicom as hd

    from medcl.io.dicom import write_series
    from medcl.io.nifti import read_volume

    images, labels = phantoms
    vol = read_volume(images / "case_000.nii.gz")
    write_series(tmp_path / "ct", np.round(vol.data), vol.affine)
    box = _box(labels / "case_000.nii.gz")
    out = tmp_path / "seg.dcm"
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", tmp_path / "ct",
                              "--box", box, "--out", out])
    assert code == 0, err
    seg = hd.seg.segread(out)
    assert seg.Modality == "SEG" and seg.NumberOfFrames >= 1
    uid = "1.2.826.0.1.3680043.8.498.7"
    write_series(tmp_path / "ct" / "other", np.round(vol.data), vol.affine, series_uid=uid)
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", tmp_path / "ct",
                              "--box", box, "--out", tmp_path / "s2.dcm"])
    assert code == 2 and "--series" in err and not (tmp_path / "s2.dcm").exists()
    code, _, err = medcl_cli(["dbsam", "segment", "--model", run, "--image", tmp_path / "ct",
                              "--series", uid, "--box", box, "--out", tmp_path / "s2.dcm"])
    assert code == 0, err
    assert hd.seg.segread(tmp_path / "s2.dcm").ReferencedSeriesSequence[0].SeriesInstanceUID \
        == uid

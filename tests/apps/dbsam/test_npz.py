"""The MedSAM-on-Laptop npz path: reading and checking cases, the challenge's 2-D and 3-D box
protocol (with a stand-in model whose mask is its box, so the protocol is what is tested),
scoring, and ``medcl dbsam segment`` end to end with LiteMedSAM's architecture, bad inputs
included (exit 2, one line, nothing written)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from medcl.io import InputFileError


class BoxModel(nn.Module):
    """A LiteMedSAM-shaped stand-in: its logits are +10 inside the prompt box, -10 outside."""

    image_size = 256
    style = "litemedsam"
    grid = 64

    def embed(self, images):
        return images[:, :1, ::4, ::4]

    def decode(self, embeddings, boxes=None, mask_prompt=None):
        out = torch.full((embeddings.shape[0], 1, 256, 256), -10.0)
        for i, (x0, y0, x1, y1) in enumerate(boxes.round().long().tolist()):
            out[i, 0, y0:y1 + 1, x0:x1 + 1] = 10.0
        return out


def _case3d(path, with_gts=True):
    imgs = np.zeros((6, 40, 50), np.uint8)
    gts = np.zeros((6, 40, 50), np.uint8)
    gts[1:5, 10:20, 12:30] = 1
    gts[2:4, 25:35, 30:45] = 2
    imgs[gts > 0] = 200
    boxes = np.array([[12, 10, 1, 29, 19, 4], [30, 25, 2, 44, 34, 3]])
    arrays = {"imgs": imgs, "boxes": boxes, "spacing": np.array([2.0, 0.8, 0.8])}
    if with_gts:
        arrays["gts"] = gts
    np.savez_compressed(path, **arrays)
    return path


def _case2d(path):
    # longest side 256: the LiteMedSAM frame is the image itself, so the stand-in's box mask
    # comes back on exactly the box's pixels
    imgs = np.zeros((200, 256, 3), np.uint8)
    gts = np.zeros((200, 256), np.uint8)
    gts[5:15, 6:20] = 1
    imgs[gts > 0] = 255
    np.savez_compressed(path, imgs=imgs, boxes=np.array([[6, 5, 19, 14]]), gts=gts)
    return path


def test_3d_protocol_walks_from_the_middle_slice_within_the_box(tmp_path):
    from medcl.dbsam.npz import npz_case, segment_npz

    case, data = npz_case(_case3d(tmp_path / "c.npz"))
    assert data["three_d"] and case.spacing == (0.8, 0.8, 2.0)
    segs, seconds, seg = segment_npz(BoxModel(), case, data)
    assert segs.shape == (6, 40, 50) and segs.dtype == np.uint8 and len(seconds) == 2
    assert set(np.unique(segs)) == {0, 1, 2}
    # box 0 spans slices 1-4 (inclusive), box 1 slices 2-3: nothing outside them
    assert not segs[0].any() and not segs[5].any()
    assert (segs[1:5] == 1).any(axis=(1, 2)).all()
    # the middle slice (2) gets the box itself: the stand-in fills it (its inclusive last row
    # and column are at the rounding edge of the 256 frame) and nothing outside it
    mid = segs[2] == 1
    assert mid[10:19, 12:29].all() and not mid[:10].any() and not mid[:, 30:].any()
    # later slices: the previous mask's box grown by 3 px at 256 (1 px here), so the walk
    # follows the masks and may grow by at most 1 px per slice on each side
    for z in (1, 3, 4):
        rows, cols = np.nonzero(segs[z] == 1)
        assert rows.min() >= 10 - 2 and cols.max() <= 29 + 2
    assert (segs[2:4, 25:34, 30:44] == 2).all()  # the later box overwrites where they overlap
    assert seg.misses == 4  # slices 1-4 embedded once each, shared by both boxes


def test_2d_case_and_its_scores(tmp_path):
    from medcl.dbsam.npz import npz_case, score_npz, segment_npz

    path = _case2d(tmp_path / "d.npz")
    case, data = npz_case(path)
    assert not data["three_d"] and len(case.slices) == 1
    segs, _, _ = segment_npz(BoxModel(), case, data)
    assert segs.shape == (200, 256)
    np.testing.assert_array_equal(segs, data["gts"])
    rows = score_npz(BoxModel(), path, path)
    assert [r["label"] for r in rows] == [1]
    assert rows[0]["dice"] == 1.0 and rows[0]["nsd_2mm"] == 1.0 and rows[0]["nsd_paper"] == 1.0
    assert rows[0]["truth_voxels"] == 140 and rows[0]["seconds"] >= 0


def test_challenge_nsd_against_a_hand_count():
    from medcl.dbsam.evaluate import dice_score, nsd_challenge

    truth = np.zeros((1, 20, 20), bool)
    truth[0, 5:15, 5:15] = True
    pred = np.zeros_like(truth)
    pred[0, 5:15, 5:19] = True  # right edge 4 px too far: beyond a 2 mm tolerance at 1 mm
    assert dice_score(pred, truth) == pytest.approx(2 * 100 / 240)
    nsd = nsd_challenge(pred, truth, (1.0, 1.0, 1.0), 2.0)
    assert 0.5 < nsd < 1.0
    assert nsd_challenge(truth, truth, (1.0, 1.0, 1.0)) == 1.0


@pytest.mark.parametrize("arrays, words", [
    ({"boxes": np.array([[1, 1, 5, 5]])}, "no 'imgs'"),
    ({"imgs": np.zeros((20, 20, 4), np.uint8), "boxes": np.array([[1, 1, 5, 5]])},
     "4 channels"),
    ({"imgs": np.zeros((20, 30, 3), np.uint8), "boxes": np.array([[1, 1, 30, 5]])},
     "outside the image"),
    ({"imgs": np.zeros((4, 20, 30), np.uint8), "boxes": np.array([[1, 1, 0, 5, 5, 4]])},
     "outside the image"),
    ({"imgs": np.zeros((4, 20, 30), np.uint8), "boxes": np.array([[1, 1, 5, 5]])},
     "(N, 6)"),
    ({"imgs": np.zeros((20, 30), np.uint8)}, "no 'boxes'"),
])
def test_bad_cases_are_refused_by_read_npz(tmp_path, arrays, words):
    from medcl.dbsam.npz import read_npz

    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputFileError, match="bad.npz") as err:
        read_npz(path)
    assert words in str(err.value)


def test_truncated_and_object_npz_are_refused(tmp_path):
    from medcl.dbsam.npz import read_npz

    good = _case2d(tmp_path / "g.npz")
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:100])
    with pytest.raises(InputFileError, match="npz archive"):
        read_npz(cut)
    obj = tmp_path / "obj.npz"
    np.savez(obj, imgs=np.array([{"a": 1}], dtype=object), boxes=np.array([[0, 0, 1, 1]]))
    with pytest.raises(InputFileError, match="npz archive"):
        read_npz(obj)


def test_segment_cli_on_a_3d_npz_with_litemedsam(tmp_path, lite_ckpt, medcl_cli):
    imgs = np.zeros((3, 24, 30), np.uint8)
    imgs[:, 6:16, 8:20] = 180
    case = tmp_path / "case.npz"
    np.savez_compressed(case, imgs=imgs, boxes=np.array([[8, 6, 1, 19, 15, 2]]))
    out = tmp_path / "segs" / "case.npz"
    fig = tmp_path / "fig.png"
    code, stdout, err = medcl_cli(["dbsam", "segment", "--sam-checkpoint", lite_ckpt, "--arch",
                                   "litemedsam", "--image", case, "--out", out,
                                   "--figure", fig])
    assert code == 0, err
    assert "1 box(es)" in stdout
    with np.load(out) as z:
        assert z.files == ["segs"]
        segs = z["segs"]
    assert segs.shape == (3, 24, 30) and segs.dtype == np.uint8
    assert set(np.unique(segs)) <= {0, 1} and not segs[0].any()  # slice 0 is outside the box
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bad_run(medcl_cli, args, out):
    code, stdout, err = medcl_cli(["dbsam", "segment", *args, "--out", out])
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert not out.exists() and not any(out.parent.glob(".*tmp*"))
    return lines[0]


def test_segment_cli_bad_inputs_exit_2_and_write_nothing(tmp_path, lite_ckpt, medcl_cli):
    from medcl.dbsam.sam import build_sam

    case = _case2d(tmp_path / "ok.npz")
    out = tmp_path / "o.npz"
    lite = ["--sam-checkpoint", lite_ckpt, "--arch", "litemedsam"]
    bad = tmp_path / "bad.npz"
    np.savez(bad, imgs=np.zeros((20, 20, 4), np.uint8), boxes=np.array([[1, 1, 5, 5]]))
    assert "4 channels" in _bad_run(medcl_cli, [*lite, "--image", bad], out)
    np.savez(bad, imgs=np.zeros((20, 20, 3), np.uint8), boxes=np.array([[1, 1, 25, 5]]))
    assert "outside the image" in _bad_run(medcl_cli, [*lite, "--image", bad], out)
    np.savez(bad, gts=np.zeros((20, 20), np.uint8))
    assert "no 'imgs'" in _bad_run(medcl_cli, [*lite, "--image", bad], out)

    tiny = tmp_path / "sam_tiny.pth"
    torch.save(build_sam("tiny", 256).state_dict(), tiny)
    line = _bad_run(medcl_cli, ["--sam-checkpoint", tiny, "--arch", "litemedsam", "--image",
                                case], out)
    assert "--arch tiny" in line and "missing: image_encoder.layers." in line
    line = _bad_run(medcl_cli, [*lite[:2], "--arch", "vit_b", "--image", case], out)
    assert "--arch litemedsam" in line and "unexpected: image_encoder.layers." in line
    cut = tmp_path / "cut.pth"
    cut.write_bytes(lite_ckpt.read_bytes()[:4096])
    assert "weights_only" in _bad_run(medcl_cli, ["--sam-checkpoint", cut, "--arch",
                                                  "litemedsam", "--image", case], out)


@pytest.mark.slow
def test_train_and_evaluate_litemedsam_on_npz_cases(tmp_path, lite_ckpt, medcl_cli):
    """DB-SAM on LiteMedSAM trained one epoch on one 2-D npz case, evaluated with the
    challenge's protocol against vanilla LiteMedSAM (``--baseline sam``)."""
    import pandas as pd

    cases = tmp_path / "cases"
    cases.mkdir()
    _case2d(cases / "c1.npz")
    run = tmp_path / "run"
    code, _, err = medcl_cli(["dbsam", "train", "--images", cases, "--labels", cases,
                              "--sam-checkpoint", lite_ckpt, "--arch", "litemedsam",
                              "--epochs", "1", "--batch-size", "1", "--out", run])
    assert code == 0, err
    cfg = (run / "config.yaml").read_text()
    assert "arch: litemedsam" in cfg and "image_size: 256" in cfg and "ffn_ratio: 1.0" in cfg
    out = tmp_path / "eval"
    code, _, err = medcl_cli(["dbsam", "evaluate", "--model", run, "--images", cases,
                              "--labels", cases, "--baseline", "sam", "--quiet", "--out", out])
    assert code == 0, err
    table = pd.read_csv(out / "cases.csv")
    assert sorted(table.method) == ["dbsam", "sam"]
    assert (table.status == "ok").all() and (table.label == 1).all()
    assert table.dice.between(0, 1).all() and table.nsd_2mm.between(0, 1).all()
    assert (table.seconds > 0).all()

"""Slice-wise inference: the embedding cache, box mapping from file to RAS indices, label
merging, and the geometry round trip of a written mask for an oblique non-RAS volume."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers import oblique_lps_affine, write_nifti
from medcl.dbsam.config import DBSAMConfig


@pytest.fixture(scope="module")
def model():
    from medcl.dbsam.model import DBSAM, build_sam

    torch.manual_seed(0)
    return DBSAM(build_sam("tiny", 128)).eval()


BOX = "2,10,8,5,24,19"
"""The object's box in file voxel indices; file axis 0 is the slice axis (S-I)."""


def _volume(tmp_path):
    """A CT-like volume stored far from RAS (axes permuted, flipped, rotated in-plane): the
    thick file axis 0 (3 mm) runs along S-I, so its 8 planes are the axial slices."""
    data = np.full((8, 40, 36), -500.0, np.float32)
    data[2:6, 10:25, 8:20] = 80.0
    path = write_nifti(tmp_path / "ct.nii.gz", data, oblique_lps_affine((3.0, 0.7, 0.8)))
    return path, data


def test_embedding_cache_hit_on_reprompt(model, tmp_path):
    from medcl.dbsam.data import load_case
    from medcl.dbsam.infer import SliceSegmenter

    path, _ = _volume(tmp_path)
    case = load_case(path, None, DBSAMConfig(arch="tiny", image_size=128))
    seg = SliceSegmenter(model, case)
    calls = []
    real = model.embed
    model.embed = lambda x: (calls.append(1), real(x))[1]
    try:
        a = seg.logits(3, np.array([5, 5, 20, 20]))
        b = seg.logits(3, np.array([2, 2, 30, 30]))  # a new box on the same slice
        c = seg.logits(3, np.array([5, 5, 20, 20]))
    finally:
        del model.embed
    assert len(calls) == 1 and seg.misses == 1 and seg.hits == 2
    np.testing.assert_allclose(a, c)
    assert not np.allclose(a, b)
    seg2 = SliceSegmenter(model, case, cache_size=1)
    seg2.embedding(0)
    seg2.embedding(1)
    seg2.embedding(0)
    assert seg2.misses == 3  # the least recently used slice was dropped


def test_box_maps_from_file_indices_to_ras(tmp_path):
    from medcl.dbsam.data import load_case
    from medcl.dbsam.infer import ras_box

    path, data = _volume(tmp_path)
    case = load_case(path, None, DBSAMConfig(arch="tiny", image_size=128, modality="ct"))
    rb = ras_box(case, (2, 10, 8), (5, 24, 19), "--box")
    x0, y0, z0, x1, y1, z1 = rb
    # the object occupies exactly the mapped box in the RAS slices
    ras = np.stack([s.T for s in case.slices], axis=2)  # (X, Y, Z) in RAS order
    inside = ras[x0:x1 + 1, y0:y1 + 1, z0:z1 + 1]
    assert inside.min() > 0.5 and (ras > 0.5).sum() == inside.size


def test_merge_labels_overlap_goes_to_larger_logit():
    from medcl.dbsam.data import CaseData
    from medcl.dbsam.infer import merge_labels

    case = CaseData(path=None, slices=[np.zeros((4, 4))] * 2, labels=None, vol=None, can=None,
                    spacing=(1, 1, 1))
    a = np.full((4, 4), -1.0)
    a[:2] = 2.0
    b = np.full((4, 4), -1.0)
    b[1:3] = 3.0
    out = merge_labels({1: {0: a}, 2: {0: b, 1: b}}, case)
    assert out[0][0].tolist() == [1] * 4 and out[0][1].tolist() == [2] * 4
    assert out[0][3].tolist() == [0] * 4 and out[1][1].tolist() == [2] * 4


def test_segment_round_trip_oblique_non_ras(model, tmp_path):
    from medcl.dbsam.infer import segment_file

    path, data = _volume(tmp_path)
    out = tmp_path / "mask.nii.gz"
    cfg = DBSAMConfig(arch="tiny", image_size=128)
    info = segment_file(model, cfg, path, out, box=BOX, label=4)
    src, res = nib.load(path), nib.load(out)
    assert res.shape == src.shape
    np.testing.assert_allclose(res.affine, src.affine, atol=1e-5)
    assert nib.aff2axcodes(res.affine) == nib.aff2axcodes(src.affine) != ("R", "A", "S")
    mask = np.asarray(res.dataobj)
    assert set(np.unique(mask)) <= {0, 4}
    # an untrained model may draw anything, but only on the boxed slices
    assert not mask[[0, 1, 6, 7]].any()
    assert info["embeddings"] == 4

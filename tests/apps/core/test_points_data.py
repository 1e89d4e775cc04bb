"""Readers (PLY / LAS / NPY / NPZ), the scenes generator, views and correspondences."""

import numpy as np
import pytest

from medcl.core.points_data import (
    correspondences,
    load_clouds,
    make_scene,
    read_cloud,
    scan_view,
)
from medcl.io.errors import InputFileError


def write_ply(path, xyz, labels=None, fields=("x", "y", "z")):
    from plyfile import PlyData, PlyElement

    dtype = [(f, "f4") for f in fields] + ([("label", "i4")] if labels is not None else [])
    arr = np.empty(len(xyz), dtype=dtype)
    for k, f in enumerate(fields):
        arr[f] = xyz[:, k]
    if labels is not None:
        arr["label"] = labels
    PlyData([PlyElement.describe(arr, "vertex")]).write(str(path))


def write_las(path, xyz, labels):
    import laspy

    las = laspy.create(point_format=0, file_version="1.2")
    las.header.scales = [0.001] * 3
    las.x, las.y, las.z = xyz[:, 0], xyz[:, 1], xyz[:, 2]
    las.classification = labels.astype(np.uint8)
    las.write(str(path))


def test_readers_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    xyz = rng.uniform(0, 2, (50, 3)).astype(np.float32)
    lab = rng.integers(0, 3, 50)
    write_ply(tmp_path / "a.ply", xyz, lab)
    write_las(tmp_path / "b.las", xyz, lab)
    np.save(tmp_path / "c.npy", np.c_[xyz, rng.normal(size=(50, 2))])
    np.save(tmp_path / "c.labels.npy", lab)
    np.savez(tmp_path / "d.npz", xyz=xyz, labels=lab)
    for name in ("a.ply", "b.las", "c.npy", "d.npz"):
        c = read_cloud(tmp_path / name)
        np.testing.assert_allclose(c.xyz, xyz, atol=1e-3)
        np.testing.assert_array_equal(c.labels, lab)
    cs = load_clouds(tmp_path)
    assert len(cs.clouds) == 4 and cs.classes == ["0", "1", "2"]


@pytest.mark.parametrize("case, message", [
    ("empty", "no points"), ("nan", "NaN or infinite"), ("noxyz", "no x/y/z"),
    ("count", "labels for 20 points"), ("suffix", "unsupported suffix")])
def test_bad_clouds(tmp_path, case, message):
    xyz = np.random.default_rng(0).normal(size=(20, 3))
    path = tmp_path / "bad.npy"
    if case == "empty":
        np.save(path, np.zeros((0, 3)))
    elif case == "nan":
        xyz[3, 1] = np.nan
        np.save(path, xyz)
    elif case == "noxyz":
        path = tmp_path / "bad.ply"
        write_ply(path, xyz, fields=("a", "b", "c"))
    elif case == "count":
        np.save(path, xyz)
        np.save(tmp_path / "bad.labels.npy", np.zeros(7, int))
    else:
        path = tmp_path / "bad.xyz"
        path.write_text("0 0 0\n")
    with pytest.raises(InputFileError, match=message) as err:
        read_cloud(path)
    assert "bad" in str(err.value)


def test_folder_without_clouds(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputFileError, match="holds no point clouds"):
        load_clouds(tmp_path)


def test_scene_views_overlap_with_true_correspondences():
    cloud = make_scene(5)
    assert set(np.unique(cloud.labels)) >= {0, 1} and cloud.labels.max() >= 2
    rng = np.random.default_rng(0)
    a, i1 = scan_view(cloud, 512, rng)
    b, i2 = scan_view(cloud, 512, rng)
    assert a.shape == b.shape == (512, 3)
    pairs = correspondences(cloud, i1, i2, 64, rng)
    gap = np.linalg.norm(cloud.xyz[i1[pairs[:, 0]]] - cloud.xyz[i2[pairs[:, 1]]], axis=1)
    assert (gap < 0.05).all()  # the same surface spot in both scans
    # the views are rotated / jittered copies: distances between pairs are preserved
    d1 = np.linalg.norm(a[pairs[0, 0]] - a[pairs[1, 0]])
    d2 = np.linalg.norm(b[pairs[0, 1]] - b[pairs[1, 1]])
    assert abs(d1 - d2) < 0.2


def test_segments_on_generated_room():
    from medcl.contrastive.points import segment_cloud

    cloud = make_scene(3)
    seg = segment_cloud(cloud.xyz.astype(float))
    fg = seg.point_foreground()
    assert (fg == (cloud.labels >= 2)).mean() > 0.95

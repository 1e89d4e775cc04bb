"""Plane removal + DBSCAN recover planted objects on a synthetic scene."""

import numpy as np

from medcl.contrastive.points import ransac_plane, segment_cloud


def _planted(seed):
    rng = np.random.default_rng(seed)
    floor = np.c_[rng.uniform(0, 4, (3000, 2)), rng.normal(0, 0.003, 3000)]
    wall = np.c_[rng.uniform(0, 4, 1500), rng.normal(0, 0.003, 1500), rng.uniform(0, 2, 1500)]
    objs, inst = [], []
    for k, (cx, cy) in enumerate([(1, 1), (3, 1), (2, 3)]):
        p = rng.normal(0, 1, (400, 3))
        p = p / np.linalg.norm(p, axis=1, keepdims=True) * 0.3 + [cx, cy, 0.5]  # sphere
        objs.append(p)
        inst.append(np.full(400, k))
    xyz = np.concatenate([floor, wall, *objs])
    truth = np.concatenate([np.full(4500, -1), *inst])
    return xyz, truth


def test_ransac_finds_the_floor():
    xyz, truth = _planted(0)
    inl, plane = ransac_plane(xyz, 0.02, 100, np.random.default_rng(0))
    assert abs(abs(plane[2]) - 1) < 1e-2 and inl[:3000].mean() > 0.99


def test_segments_recover_planted_objects():
    for seed in range(3):
        xyz, truth = _planted(seed)
        seg = segment_cloud(xyz, seed=seed)
        fg = seg.point_foreground()
        assert (~fg[truth < 0]).mean() > 0.99  # floor and wall are background
        assert seg.foreground.sum() == 3
        for k in range(3):
            ids = seg.ids[truth == k]
            top = np.bincount(ids[ids >= 0]).argmax()
            assert seg.foreground[top] and (ids == top).mean() > 0.97
            assert (truth[seg.ids == top] == k).mean() > 0.99  # pure


"""Skeleton layouts and ST-GCN's spatial-configuration adjacency against hand computations;
the ST-GCN encoder's shapes and its graph convolution against a loop."""

import numpy as np
import pytest
import torch

from medcl.contrastive.sequences.skeleton.graph import (
    LAYOUTS,
    SkeletonLayout,
    hop_distance,
    layout_from_edges,
    spatial_adjacency,
)
from medcl.contrastive.sequences.skeleton.stgcn import STGCN, GraphConv

pytestmark = pytest.mark.usefixtures("one_thread")


def test_chain_adjacency_by_hand():
    # 0 - 1 - 2 - 3 with centre 1: degrees (self included) 2, 3, 3, 2
    lay = SkeletonLayout("chain", 4, ((0, 1), (1, 2), (2, 3)), center=1)
    a = spatial_adjacency(lay).numpy()
    root = np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2])
    # centripetal: source nearer the centre than the target (A[k, source, target])
    centripetal = np.zeros((4, 4))
    centripetal[1, 0] = 1 / 2   # 1 -> 0
    centripetal[1, 2] = 1 / 3   # 1 -> 2
    centripetal[2, 3] = 1 / 2   # 2 -> 3
    centrifugal = np.zeros((4, 4))
    centrifugal[0, 1] = 1 / 3   # 0 -> 1
    centrifugal[2, 1] = 1 / 3   # 2 -> 1
    centrifugal[3, 2] = 1 / 3   # 3 -> 2
    np.testing.assert_allclose(a[0], root)
    np.testing.assert_allclose(a[1], centripetal)
    np.testing.assert_allclose(a[2], centrifugal)


@pytest.mark.parametrize("name", ["ntu25", "coco17"])
def test_known_layouts(name):
    lay = LAYOUTS[name]
    a = spatial_adjacency(lay)
    assert a.shape == (3, lay.num_joints, lay.num_joints)
    torch.testing.assert_close(a.sum((0, 1)), torch.ones(lay.num_joints))  # A D^-1
    hop = hop_distance(lay.num_joints, lay.edges)
    assert np.isfinite(hop).all()  # one connected skeleton
    assert len(lay.edges) == {"ntu25": 24, "coco17": 19}[name]
    flip = np.array(lay.flip)
    assert (flip[flip] == np.arange(lay.num_joints)).all()  # an involution
    # every bone maps to a bone under the left/right flip
    bones = {frozenset(e) for e in lay.edges}
    assert {frozenset((flip[i], flip[j])) for i, j in lay.edges} == bones


def test_ntu_known_neighbours():
    lay = LAYOUTS["ntu25"]
    hop = hop_distance(25, lay.edges)
    assert hop[20, 2] == 1 and hop[20, 4] == 1 and hop[20, 8] == 1 and hop[20, 1] == 1
    assert hop[3, 15] == 8  # head .. left foot: 3-2-20-1-0-12-13-14-15


def test_edge_list_centre_and_bad_edges():
    lay = layout_from_edges([(0, 1), (1, 2), (1, 3)])
    assert lay.num_joints == 4 and lay.center == 1 and lay.flip is None
    with pytest.raises(ValueError):
        SkeletonLayout("bad", 3, ((0, 3),), center=0)


def test_graph_conv_against_loop():
    torch.manual_seed(0)
    a = torch.rand(3, 5, 5)
    gc = GraphConv(2, 4, 3)
    x = torch.randn(2, 2, 6, 5)
    y = gc(x, a)
    z = gc.conv(x).view(2, 3, 4, 6, 5)
    ref = torch.zeros(2, 4, 6, 5)
    for k in range(3):
        for j in range(5):
            for i in range(5):
                ref[..., i] += z[:, k, :, :, j] * a[k, j, i]
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("depth", ["stgcn", "tiny"])
def test_stgcn_shapes(depth):
    a = spatial_adjacency(LAYOUTS["coco17"])
    enc = STGCN(a, in_channels=2, hidden=4, out_dim=12, depth=depth)
    assert enc(torch.randn(3, 2, 16, 17, 2)).shape == (3, 12)
    with pytest.raises(ValueError, match="expected"):
        enc(torch.randn(3, 2, 16, 25, 1))


def test_stgcn_persons_are_averaged():
    enc = STGCN(spatial_adjacency(LAYOUTS["ntu25"]), hidden=4, out_dim=8, depth="tiny").eval()
    x = torch.randn(2, 3, 8, 25, 2)
    both = enc(x)
    one = (enc(x[..., :1]) + enc(x[..., 1:])) / 2  # data BN in eval mode is per-person affine
    torch.testing.assert_close(both, one, rtol=1e-5, atol=1e-5)

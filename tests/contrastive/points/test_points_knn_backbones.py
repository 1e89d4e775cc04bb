"""Chunked kNN equals brute force; PointNet / DGCNN shapes, permutation equivariance, grads."""

import pytest
import torch

from medcl.contrastive.points import DGCNN, PointNet, build_point_backbone, knn, knn_dense

pytestmark = pytest.mark.usefixtures("one_thread")


def _brute(x, y, k):
    out = torch.empty(x.shape[0], x.shape[1], k, dtype=torch.long)
    for b in range(x.shape[0]):
        for i in range(x.shape[1]):
            d = [float(((x[b, i] - y[b, j]) ** 2).sum()) for j in range(y.shape[1])]
            out[b, i] = torch.tensor(sorted(range(len(d)), key=d.__getitem__)[:k])
    return out


@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_knn_equals_brute_force(chunk):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 60, 3, generator=g, dtype=torch.float64)
    y = torch.randn(2, 45, 3, generator=g, dtype=torch.float64)
    ref = _brute(x, y, 5)
    assert torch.equal(knn(x, 5, y, chunk=chunk), ref)
    assert torch.equal(knn(x, 5, chunk=chunk), _brute(x, x, 5))


def test_chunked_equals_dense_larger():
    x = torch.randn(1, 3000, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(knn(x, 16, chunk=256), knn_dense(x, 16))


def test_knn_rejects_bad_k():
    with pytest.raises(ValueError, match="exceeds"):
        knn(torch.randn(1, 4, 3), 5)


@pytest.mark.parametrize("cls", [PointNet, DGCNN])
def test_backbone_permutation_equivariant_and_trains(cls):
    torch.manual_seed(0)
    net = cls(width=16, out_dim=8) if cls is PointNet else cls(width=16, out_dim=8, k=6)
    x = torch.randn(2, 50, 3)
    perm = torch.randperm(50)
    f = net(x)
    assert f.shape == (2, 50, 8)
    torch.testing.assert_close(net(x[:, perm]), f[:, perm], atol=1e-5, rtol=1e-4)
    assert net.pool(f).shape == (2, 16)
    f.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_build_backbone_names():
    assert isinstance(build_point_backbone("dgcnn", 8, 8, 4), DGCNN)
    with pytest.raises(ValueError, match="pointnet or dgcnn"):
        build_point_backbone("pointnet++")

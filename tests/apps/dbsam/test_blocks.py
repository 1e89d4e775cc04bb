"""Tests for dbsam.blocks (Qin et al., "DB-SAM", MICCAI 2024, arXiv:2410.04172): the image
pyramid's shapes and scales, multi-scale deformable attention against a dense-attention
reference, the bilateral block's start-as-identity on the ViT side, and the per-channel fusion."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medcl.dbsam.blocks import (
    BilateralCrossAttention,
    ConvBranch,
    DropPath,
    MultiScaleDeformableAttention,
    ViTConvFusion,
    deformable_sample,
    reference_points,
)


def test_pyramid_levels_shapes_and_scales():
    branch = ConvBranch(192, (32, 64, 128)).eval()
    seen = []
    for stack in branch.stacks:
        stack[0].register_forward_hook(lambda mod, inp, out: seen.append(inp[0].shape[-1]))
    with torch.no_grad():
        levels = branch(torch.randn(2, 3, 256, 256))
    # four levels, all on the ViT token grid (S/16) and projected to the ViT width
    assert [tuple(t.shape) for t in levels] == [(2, 16, 16, 192)] * 4
    # each stack sees the slice at 1/2, 1/4, 1/8, 1/16 of its side
    assert seen == [128, 64, 32, 16]
    strides = [[m.stride[0] for m in stack.modules()
                if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
               for stack in branch.stacks]
    assert strides == [[2, 2, 2], [2, 2, 1], [2, 1, 1], [1, 1, 1]]
    with torch.no_grad():
        assert branch(torch.randn(1, 3, 128, 128))[3].shape == (1, 8, 8, 192)


def test_pyramid_parameter_count_is_the_authors_at_vit_b():
    # the authors' LFIP0 with levels 1-4 (128-256-512 wide, projected to 768): about 9 M
    n = sum(p.numel() for p in ConvBranch(768, (128, 256, 512)).parameters())
    assert 8.5e6 < n < 9.5e6, n


def _dense_reference(value, shapes, locations, weights):
    """Deformable attention as dense attention: the attention matrix over every value cell is
    sum_p A_p * bilinear_kernel(location_p, cell), built cell by cell (no grid_sample)."""
    b, _, m, d = value.shape
    q = locations.shape[1]
    out = torch.zeros(b, q, m, d, dtype=torch.float64)
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        v = value[:, start:start + h * w].double()  # (B, HW, M, D)
        start += h * w
        px = locations[:, :, :, lvl, :, 0].double() * w - 0.5  # (B, Q, M, P) in cell units
        py = locations[:, :, :, lvl, :, 1].double() * h - 0.5
        cols = torch.arange(w, dtype=torch.float64)
        rows = torch.arange(h, dtype=torch.float64)
        kx = (1 - (px[..., None] - cols).abs()).clamp(min=0)  # (B, Q, M, P, W)
        ky = (1 - (py[..., None] - rows).abs()).clamp(min=0)  # (B, Q, M, P, H)
        kernel = ky[..., :, None] * kx[..., None, :]  # (B, Q, M, P, H, W)
        attn = (weights[:, :, :, lvl, :, None, None].double() * kernel).sum(3)  # (B, Q, M, H, W)
        out += torch.einsum("bqmk,bkmd->bqmd", attn.flatten(3), v)
    return out.reshape(b, q, m * d)


def test_deformable_sampling_equals_dense_attention():
    gen = torch.Generator().manual_seed(0)
    shapes = [(5, 7), (3, 4), (5, 7)]
    b, q, m, d, p = 2, 6, 3, 4, 4
    value = torch.randn(b, sum(h * w for h, w in shapes), m, d, generator=gen)
    # fractional locations, some outside [0, 1] (zeros padding) and near the edges
    locations = torch.rand(b, q, m, len(shapes), p, 2, generator=gen) * 1.4 - 0.2
    weights = torch.rand(b, q, m, len(shapes), p, generator=gen)
    ours = deformable_sample(value, shapes, locations, weights)
    torch.testing.assert_close(ours.double(), _dense_reference(value, shapes, locations, weights),
                               rtol=1e-5, atol=1e-5)


def test_deformable_attention_on_grid_points_gathers_cells():
    # offsets forced to whole cells: every sample lands on a cell centre and reads that cell
    dim, heads, levels, points = 8, 2, 2, 2
    attn = MultiScaleDeformableAttention(dim, heads, levels, points)
    shapes = [(4, 5), (4, 5)]
    shifts = torch.tensor([[[[1, 0], [0, -1]], [[-2, 1], [3, 3]]],
                           [[[0, 2], [-1, -1]], [[1, 1], [0, 0]]]], dtype=torch.float32)
    with torch.no_grad():
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.copy_(shifts.flatten())  # (heads, levels, points, 2)
    gen = torch.Generator().manual_seed(1)
    n = sum(h * w for h, w in shapes)
    query = torch.randn(1, n, dim, generator=gen)
    value = torch.randn(1, n, dim, generator=gen)
    ref = reference_points(shapes)
    out = attn(query, ref, value, shapes)

    with torch.no_grad():
        v = attn.value_proj(value).view(1, n, heads, dim // heads)
        a = attn.attention_weights(query).view(1, n, heads, levels * points).softmax(-1)
        a = a.view(1, n, heads, levels, points)
    expected = torch.zeros(1, n, heads, dim // heads)
    for i in range(n):
        lvl_q, cell = divmod(i, 20)
        y, x = divmod(cell, 5)
        for h in range(heads):
            for lvl in range(levels):
                for pt in range(points):
                    dx, dy = shifts[h, lvl, pt].long().tolist()
                    if 0 <= x + dx < 5 and 0 <= y + dy < 4:
                        key = lvl * 20 + (y + dy) * 5 + (x + dx)
                        expected[0, i, h] += a[0, i, h, lvl, pt] * v[0, key, h]
    with torch.no_grad():
        expected = attn.output_proj(expected.reshape(1, n, dim))
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_deformable_attention_gradients_match_dense_reference():
    gen = torch.Generator().manual_seed(2)
    shapes = [(4, 4), (2, 3)]
    value = torch.randn(1, 22, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    locations = (torch.rand(1, 5, 2, 2, 3, 2, generator=gen, dtype=torch.float64) * 0.9 + 0.05)
    locations.requires_grad_(True)
    weights = torch.rand(1, 5, 2, 2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    g = torch.randn(1, 5, 6, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad((deformable_sample(value, shapes, locations, weights) * g).sum(),
                                (value, weights))
    ref = torch.autograd.grad((_dense_reference(value, shapes, locations, weights) * g).sum(),
                              (value, weights))
    for ours, theirs in zip(grads, ref, strict=True):
        torch.testing.assert_close(ours, theirs)


def test_bilateral_block_starts_as_identity_on_vit_and_updates_conv():
    torch.manual_seed(0)
    block = BilateralCrossAttention(24, 3, num_levels=3).eval()
    vit = torch.randn(2, 4, 4, 24)
    convs = [torch.randn(2, 4, 4, 24), torch.randn(2, 4, 4, 24)]
    with torch.no_grad():
        v, c = block(vit, convs)
    assert torch.equal(v, vit)
    assert all(not torch.allclose(a, b) for a, b in zip(c, convs, strict=True))
    with torch.no_grad():
        block.vit_gamma_attn.fill_(1.0)
        v, _ = block(vit, convs)
    assert not torch.allclose(v, vit)
    # the ViT tokens read the convolution levels: changing a level changes them
    with torch.no_grad():
        v2, _ = block(vit, [convs[0], torch.randn(2, 4, 4, 24)])
    assert not torch.allclose(v, v2)


def test_drop_path_drops_whole_samples():
    torch.manual_seed(0)
    layer = DropPath(0.5).train()
    out = layer(torch.ones(400, 3, 2))
    per_sample = out.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample == per_sample[:, :1]).all()  # a sample is kept or dropped as a whole
    assert 0.35 < (per_sample[:, 0] == 0).float().mean() < 0.65
    x = torch.randn(4, 3)
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(ValueError):
        DropPath(1.0)


def test_fusion_weighs_sources_per_channel():
    torch.manual_seed(0)
    fusion = ViTConvFusion(24, num_conv=2, ffn_ratio=2.0).eval()
    vit = torch.randn(2, 3, 3, 24)
    convs = [torch.randn(2, 3, 3, 24), torch.randn(2, 3, 3, 24)]
    with torch.no_grad():
        assert torch.equal(fusion(vit, convs), vit)  # gamma = 0: the ViT tokens unchanged
        w = fusion.weights(vit, convs)
        assert w.shape == (2, 3, 3, 24, 3)
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 3, 24))
        # a softmax per channel, not one scalar gate per token
        assert w.std(dim=3).min() > 1e-3
        fusion.gamma.fill_(1.0)
        out = fusion(vit, convs)
        f = w[..., 0] * convs[0] + w[..., 1] * convs[1] + w[..., 2] * vit
        f = f + fusion.ffn(fusion.ffn_norm(f))
        torch.testing.assert_close(out, F.layer_norm(f, (24,), fusion.norm.weight,
                                                     fusion.norm.bias))
    with pytest.raises(ValueError, match="2 convolution levels"):
        fusion(vit, convs[:1])

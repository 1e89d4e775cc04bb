"""TinyViT image encoder of LiteMedSAM, written here, with the parameter names of its checkpoint.

Papers: Wu et al., "TinyViT: Fast Pretraining Distillation for Small Vision Transformers",
ECCV 2022 (the architecture); Zhang et al., "Faster Segment Anything: Towards Lightweight SAM
for Mobile Applications" (MobileSAM), arXiv:2306.14289 (TinyViT with SAM's 256-channel neck);
Ma et al., "Segment anything in medical images", Nature Communications 2024, and the LiteMedSAM
baseline of the CVPR 2024 "Segment Anything in Medical Images on Laptop" challenge (the
MedSAM repository, branch ``LiteMedSAM``), which distils MedSAM's ViT-B into this encoder at a
256 x 256 input.

LiteMedSAM's variant (:data:`LITEMEDSAM`), stage by stage for a 256 x 256 input:

=======  ==============================  =======  ======  =====  ======
stage    blocks                          grid     width   heads  window
=======  ==============================  =======  ======  =====  ======
embed    two 1x1 conv-BN, GELU between   256²     64
0        2 MBConv (expansion 4)          256²     64
1        2 TinyViT blocks                128²     128     4      7
2        6 TinyViT blocks                64²      160     5      14
3        2 TinyViT blocks                64²      320     10     7
neck     1x1 conv, LN2d, 3x3 conv, LN2d  64²      256
=======  ==============================  =======  ======  =====  ======

Each stage but the last ends in a patch merging (1x1 conv-BN, GELU, depthwise 3x3 conv-BN of
stride 2 -- stride 1 into the 320-wide last stage --, GELU, 1x1 conv-BN). A TinyViT block is
window attention with a learnt bias per head and relative offset ``(|dy|, |dx|)`` (LeViT's
attention bias) and a residual, a depthwise 3x3 conv-BN (*not* residual), and a pre-LN MLP
with a residual; windows that do not tile the grid are zero-padded at the bottom and right
(the padded tokens take part in the attention, as in the authors' code).

Departures from the authors' code (same maths, same parameter names and shapes, so
``lite_medsam.pth`` loads with ``strict=True``):

* tokens are kept channels-last ``(B, H, W, C)`` between blocks instead of ``(B, H*W, C)``
  with a fixed ``input_resolution``, so the DB-SAM adapters of :mod:`medcl.dbsam.litemedsam`
  can read them and any input side that is a multiple of 4 runs (the authors' forward
  hard-codes a 64 x 64 output);
* the attention runs through ``torch.nn.functional.scaled_dot_product_attention`` with the
  bias as an additive mask (the same softmax(q k^T / sqrt(d) + b) v);
* no ``timm`` dependency (no stochastic depth: LiteMedSAM uses drop-path 0), no
  gradient checkpointing and no layer-wise learning-rate attributes;
* the bias index table is computed as ``|dy| * w + |dx|``, which is the order in which the
  authors' enumeration first meets each offset.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

__all__ = ["LITEMEDSAM", "TinyViTSAM", "TinyViTSpec"]


@dataclass(frozen=True)
class TinyViTSpec:
    """Sizes of a TinyViT-SAM encoder (see the module docstring for LiteMedSAM's)."""

    embed_dims: tuple[int, ...] = (64, 128, 160, 320)
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (2, 4, 5, 10)
    window_sizes: tuple[int, ...] = (7, 7, 14, 7)
    merge_strides: tuple[int, ...] = (2, 2, 1)
    mlp_ratio: float = 4.0
    mbconv_expand_ratio: float = 4.0
    out_chans: int = 256
    img_size: int = 256


LITEMEDSAM = TinyViTSpec()
"""LiteMedSAM's encoder: 256² input, 64 x 64 x 256 embedding (``lite_medsam.pth``)."""


class Conv2dBN(nn.Sequential):
    """Convolution without bias followed by BatchNorm (names ``c``, ``bn`` as the checkpoint)."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1,
                 groups: int = 1, bn_weight: float = 1.0) -> None:
        super().__init__()
        self.add_module("c", nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups,
                                       bias=False))
        bn = nn.BatchNorm2d(cout)
        nn.init.constant_(bn.weight, bn_weight)
        self.add_module("bn", bn)

    def forward(self, x: Tensor) -> Tensor:
        """Convolution then BatchNorm; in evaluation as one convolution with the BatchNorm
        folded into its weight and bias (the same affine map, one pass over the map)."""
        conv, bn = self.c, self.bn
        if self.training or not bn.track_running_stats or bn.running_var is None:
            return bn(conv(x))
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        weight = conv.weight * scale.view(-1, 1, 1, 1).to(conv.weight.dtype)
        bias = bn.bias - bn.running_mean * scale
        return F.conv2d(x, weight, bias.to(weight.dtype), conv.stride, conv.padding,
                        conv.dilation, conv.groups)


class PatchEmbed(nn.Module):
    """LiteMedSAM's stem: two 1x1 conv-BN with a GELU between, at full resolution (the
    original TinyViT's stem has two stride-2 3x3 convolutions; LiteMedSAM replaced them so
    that a 256² input keeps a 256² first stage)."""

    def __init__(self, in_chans: int, dim: int) -> None:
        super().__init__()
        self.seq = nn.Sequential(Conv2dBN(in_chans, dim // 2), nn.GELU(), Conv2dBN(dim // 2, dim))

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, C, S, S)."""
        return self.seq(x)


class MBConv(nn.Module):
    """Inverted residual of MobileNetV2/EfficientNet: 1x1 expand, depthwise 3x3, 1x1 project
    (each conv-BN), GELU after the first two and after the residual sum."""

    def __init__(self, dim: int, expand: float) -> None:
        super().__init__()
        hidden = int(dim * expand)
        self.conv1 = Conv2dBN(dim, hidden)
        self.conv2 = Conv2dBN(hidden, hidden, 3, groups=hidden)
        self.conv3 = Conv2dBN(hidden, dim, bn_weight=0.0)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        y = self.act(self.conv2(self.act(self.conv1(x))))
        return self.act(x + self.conv3(y))


class PatchMerging(nn.Module):
    """Down-sampling between stages: 1x1 conv-BN to the next width, GELU, depthwise 3x3 conv-BN
    with ``stride``, GELU, 1x1 conv-BN."""

    def __init__(self, dim: int, out_dim: int, stride: int) -> None:
        super().__init__()
        self.conv1 = Conv2dBN(dim, out_dim)
        self.conv2 = Conv2dBN(out_dim, out_dim, 3, stride=stride, groups=out_dim)
        self.conv3 = Conv2dBN(out_dim, out_dim)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) channels-first -> (B, H', W', C') channels-last."""
        x = self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))
        return x.permute(0, 2, 3, 1)


def bias_index(window: int) -> Tensor:
    """``(w*w, w*w)`` index of the bias table entry of each (query, key) pair in a window: the
    offset ``(|dy|, |dx|)`` as ``|dy| * w + |dx|``."""
    y, x = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    y, x = y.flatten(), x.flatten()
    return (y[:, None] - y[None]).abs() * window + (x[:, None] - x[None]).abs()


class Attention(nn.Module):
    """Multi-head attention in one window with a learnt bias per head and relative offset
    (Graham et al., "LeViT", ICCV 2021; TinyViT, Wu et al., ECCV 2022). Pre-LayerNorm inside.
    The fused ``qkv`` projection is laid out per head as ``[q | k | v]`` (the checkpoint's
    layout)."""

    def __init__(self, dim: int, num_heads: int, window: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.attention_biases = nn.Parameter(torch.zeros(num_heads, window * window))
        self.register_buffer("attention_bias_idxs", bias_index(window), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(N, T, C) tokens of N windows of T = w*w tokens -> (N, T, C)."""
        n, t, c = x.shape
        qkv = self.qkv(self.norm(x)).view(n, t, self.num_heads, 3 * self.head_dim)
        q, k, v = qkv.permute(0, 2, 1, 3).split(self.head_dim, dim=-1)
        bias = self.attention_biases[:, self.attention_bias_idxs].to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias[None])
        return self.proj(y.transpose(1, 2).reshape(n, t, c))


class Mlp(nn.Module):
    """Pre-LayerNorm two-layer MLP with GELU."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class TinyViTBlock(nn.Module):
    """Window attention (residual), depthwise 3x3 conv-BN, MLP (residual) on (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window_size = window
        self.attn = Attention(dim, num_heads, window)
        self.local_conv = Conv2dBN(dim, dim, 3, groups=dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def _windowed(self, x: Tensor) -> Tensor:
        b, h, w, c = x.shape
        s = self.window_size
        if h == s and w == s:
            return self.attn(x.reshape(b, h * w, c)).view(b, h, w, c)
        pb, pr = (s - h % s) % s, (s - w % s) % s
        if pb or pr:
            x = F.pad(x, (0, 0, 0, pr, 0, pb))
        ph, pw = h + pb, w + pr
        win = (x.view(b, ph // s, s, pw // s, s, c).transpose(2, 3)
               .reshape(-1, s * s, c))
        y = self.attn(win).view(b, ph // s, pw // s, s, s, c).transpose(2, 3)
        y = y.reshape(b, ph, pw, c)
        return y[:, :h, :w] if (pb or pr) else y

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        x = x + self._windowed(x)
        x = self.local_conv(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return x + self.mlp(x)


class ConvStage(nn.Module):
    """Stage 0: MBConv blocks on channels-first maps, then a patch merging."""

    def __init__(self, dim: int, depth: int, expand: float, out_dim: int, stride: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(MBConv(dim, expand) for _ in range(depth))
        self.downsample = PatchMerging(dim, out_dim, stride)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, H', W', C') channels-last."""
        for block in self.blocks:
            x = block(x)
        return self.downsample(x)


class AttnStage(nn.Module):
    """Stages 1-3: TinyViT blocks on channels-last tokens, then (except the last) a merging."""

    def __init__(self, dim: int, depth: int, num_heads: int, window: int, mlp_ratio: float,
                 out_dim: int | None, stride: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(TinyViTBlock(dim, num_heads, window, mlp_ratio)
                                    for _ in range(depth))
        self.downsample = (None if out_dim is None
                           else PatchMerging(dim, out_dim, stride))

    def merge(self, x: Tensor) -> Tensor:
        """The stage's patch merging on (B, H, W, C) tokens (identity in the last stage)."""
        if self.downsample is None:
            return x
        return self.downsample(x.permute(0, 3, 1, 2))

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = block(x)
        return self.merge(x)


class TinyViTSAM(nn.Module):
    """TinyViT with SAM's neck: (B, 3, S, S) in [0, 1] -> (B, 256, S/4, S/4) image embedding.

    Module names (``patch_embed``, ``layers.{0..3}``, ``neck``) and parameter shapes are those
    of the ``image_encoder`` of LiteMedSAM's ``lite_medsam.pth`` (see the module docstring).

    Parameters
    ----------
    spec : TinyViTSpec
        Sizes; :data:`LITEMEDSAM` by default.

    Attributes
    ----------
    img_size : int
        The input side S the encoder was built for (its checkpoint was trained at 256).
    """

    def __init__(self, spec: TinyViTSpec = LITEMEDSAM) -> None:
        super().__init__()
        d, n = spec.embed_dims, len(spec.embed_dims)
        self.spec = spec
        self.img_size = spec.img_size
        self.patch_embed = PatchEmbed(3, d[0])
        layers: list[nn.Module] = [ConvStage(d[0], spec.depths[0], spec.mbconv_expand_ratio,
                                             d[1], spec.merge_strides[0])]
        for i in range(1, n):
            last = i == n - 1
            layers.append(AttnStage(d[i], spec.depths[i], spec.num_heads[i],
                                    spec.window_sizes[i], spec.mlp_ratio,
                                    None if last else d[i + 1],
                                    1 if last else spec.merge_strides[i]))
        self.layers = nn.ModuleList(layers)
        self.neck = nn.Sequential(
            nn.Conv2d(d[-1], spec.out_chans, 1, bias=False), LayerNorm2d(spec.out_chans),
            nn.Conv2d(spec.out_chans, spec.out_chans, 3, padding=1, bias=False),
            LayerNorm2d(spec.out_chans))
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    @property
    def stride(self) -> int:
        """Input pixels per embedding cell (4 for LiteMedSAM)."""
        return 2 ** sum(1 for s in self.spec.merge_strides if s == 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, 256, S/4, S/4)."""
        x = self.layers[0](self.patch_embed(x.contiguous(memory_format=torch.channels_last)))
        for layer in self.layers[1:]:
            x = layer(x)
        return self.neck(x.permute(0, 3, 1, 2))

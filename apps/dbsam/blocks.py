"""DB-SAM's blocks added around SAM's frozen ViT (Qin et al., MICCAI 2024, arXiv:2410.04172):
channel-attention adapters, the image-pyramid convolution branch, bilateral multi-scale
deformable attention between the ViT tokens and the convolution levels, and the per-channel
ViT-convolution fusion. Every residual path that reaches the ViT tokens ends in a
zero-initialised projection or scale, so an untrained DB-SAM computes SAM's image embedding
exactly.

Where the authors' released code (github.com/AlfredQin/DB-SAM, the ``db_sam_plus`` model
configuration) is followed and where this departs from it is said in each block's docstring.
The released code is incomplete (the deformable-attention CUDA extension, its ``MSMixFFN`` and
the ViT-Adapter helpers are missing); the missing parts are written here from their
descriptions in the papers they come from, in plain PyTorch (CPU and CUDA alike).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

__all__ = [
    "BilateralCrossAttention",
    "ChannelAttentionBlock",
    "ConvBranch",
    "DropPath",
    "MixFFN",
    "MultiScaleDeformableAttention",
    "ViTConvFusion",
    "deformable_sample",
    "reference_points",
]


class ChannelAttentionBlock(nn.Module):
    """Learnable channel attention after a frozen ViT block (DB-SAM's ViT branch).

    LayerNorm -> depthwise 3x3 convolution -> GELU -> squeeze-excitation (global average pool,
    C -> C/4 -> C, sigmoid) -> 1x1 projection, added to the tokens (Qin et al., MICCAI 2024,
    arXiv:2410.04172). The tokens stay channels-last: the LayerNorm over channels is
    LayerNorm2d's, and the 1x1 convolution is a Linear layer, the same maps without two
    transposes.

    The projection starts at zero, so the block starts as the identity and DB-SAM as SAM.

    Parameters
    ----------
    dim : int
        Token width C.
    reduction : float
        Squeeze-excitation bottleneck as a fraction of C.
    """

    def __init__(self, dim: int, reduction: float = 0.25) -> None:
        super().__init__()
        hidden = max(1, int(dim * reduction))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim)
        self.act = nn.GELU()
        self.squeeze = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True),
                                     nn.Linear(hidden, dim), nn.Sigmoid())
        self.proj = nn.Linear(dim, dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) tokens -> (B, H, W, C)."""
        y = self.act(self.dwconv(self.norm(x).permute(0, 3, 1, 2))).permute(0, 2, 3, 1)
        y = y * self.squeeze(y.mean(dim=(1, 2)))[:, None, None, :]
        return x + self.proj(y)


# --------------------------------------------------------------------------------------------
# Regularisation
# --------------------------------------------------------------------------------------------


class DropPath(nn.Module):
    """Stochastic depth: in training, drop a residual update for a whole sample with
    probability ``p`` and scale the kept ones by ``1 / (1 - p)`` (Huang et al., "Deep Networks
    with Stochastic Depth", ECCV 2016); the identity in evaluation. DB-SAM uses p = 0.3."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        """(B, ...) update -> (B, ...), whole samples zeroed at random while training."""
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


# --------------------------------------------------------------------------------------------
# Convolution branch: the image pyramid
# --------------------------------------------------------------------------------------------


def _conv_bn_relu(cin: int, cout: int, kernel: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2,
                                   bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvBranch(nn.Module):
    """DB-SAM's convolution branch: an image pyramid of light convolution stacks.

    The normalised slice is resized to 1/2, 1/4, 1/8 and 1/16 of its side (bilinear with
    anti-aliasing, as the authors' ``torchvision`` ``Resize``); each scale has its own stack
    of three (3x3 convolution-BN-ReLU, 1x1 convolution-BN-ReLU) pairs of widths ``widths``,
    whose first 3x3 convolutions have stride 2 until the grid is 1/16 of the input (3, 2, 1 and
    0 stride-2 steps), then a 1x1 projection to the ViT width and a LayerNorm2d. Every level
    therefore lies on the ViT token grid (64 x 64 at 1024²) but sees the image at another scale:
    fine detail in level 1, wide context in level 4 (Qin et al., MICCAI 2024,
    arXiv:2410.04172, Sec. 2.2; the authors' ``LFIP0`` with levels 1-4 in
    ``db_sam_plus_model_params.yaml``, whose widths are 128, 256, 512 for ViT-B). A learnt
    level embedding (zero at start) is added to each level, as the authors' adapter does.

    Departure: the authors use SyncBatchNorm; plain BatchNorm here (DDP users may convert it
    with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``).

    Parameters
    ----------
    dim : int
        Output width, the ViT width C.
    widths : tuple of int
        Widths of the three pairs of each stack (128, 256, 512 for ViT-B).
    levels : int
        Number of pyramid scales (1/2 ... 1/2**levels of the input); 4 in DB-SAM.
    out_stride : int
        Input pixels per cell of the output grid: 16 for SAM's ViT (the default), 4 for
        LiteMedSAM's TinyViT, whose embedding is S/4; then at most two levels (1/2 and 1/4)
        lie on or above the grid.
    """

    def __init__(self, dim: int, widths: tuple[int, ...] = (128, 256, 512),
                 levels: int = 4, out_stride: int = 16) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ValueError("widths: one per (3x3, 1x1) pair, three in all")
        if out_stride not in (2, 4, 8, 16):
            raise ValueError(f"out_stride must be 2, 4, 8 or 16, got {out_stride}")
        steps = int(math.log2(out_stride))
        if not 1 <= levels <= steps:
            raise ValueError(f"levels must be 1..{steps} for output stride {out_stride}, "
                             f"got {levels}")
        self.levels = levels
        self.out_stride = out_stride
        stacks = []
        for k in range(1, levels + 1):
            layers: list[nn.Module] = []
            cin = 3
            for j, width in enumerate(widths):
                stride = 2 if j < steps - k else 1  # input at 1/2**k, output at 1/out_stride
                layers += [_conv_bn_relu(cin, width, 3, stride), _conv_bn_relu(width, width, 1)]
                cin = width
            layers += [nn.Conv2d(cin, dim, kernel_size=1), LayerNorm2d(dim)]
            stacks.append(nn.Sequential(*layers))
        self.stacks = nn.ModuleList(stacks)
        self.level_embed = nn.Parameter(torch.zeros(levels, dim))

    def forward(self, images: Tensor) -> list[Tensor]:
        """(B, 3, S, S) normalised images -> ``levels`` maps (B, g, g, C), channels-last,
        g = S / ``out_stride``."""
        side = images.shape[-1]
        out = []
        for k, stack in enumerate(self.stacks, start=1):
            scaled = F.interpolate(images, size=(side >> k, side >> k), mode="bilinear",
                                   align_corners=False, antialias=True)
            feat = stack(scaled).permute(0, 2, 3, 1)
            out.append((feat + self.level_embed[k - 1]).contiguous())
        return out


# --------------------------------------------------------------------------------------------
# Multi-scale deformable attention (plain PyTorch)
# --------------------------------------------------------------------------------------------


def reference_points(shapes: list[tuple[int, int]], device=None) -> Tensor:
    """Normalised centres ``((x + 0.5) / W, (y + 0.5) / H)`` of every cell of every level,
    level after level, row-major: (sum H_l W_l, 2). The reference point of a query is its own
    position (Zhu et al., "Deformable DETR", ICLR 2021, Sec. 4.1, encoder)."""
    refs = []
    for h, w in shapes:
        y, x = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                              torch.arange(w, device=device, dtype=torch.float32),
                              indexing="ij")
        refs.append(torch.stack([(x.flatten() + 0.5) / w, (y.flatten() + 0.5) / h], dim=-1))
    return torch.cat(refs)


def deformable_sample(value: Tensor, shapes: list[tuple[int, int]], locations: Tensor,
                      weights: Tensor) -> Tensor:
    """The sampling core of multi-scale deformable attention, Eq. (3) of Zhu et al.,
    "Deformable DETR", ICLR 2021: ``out[q, m] = sum_l sum_p A[q, m, l, p] V_l[m](loc[q, m, l,
    p])``, with bilinear interpolation and zeros outside the map, by
    ``torch.nn.functional.grid_sample`` (``align_corners=False``: location 0 and 1 are the
    outer edges of the first and last cells). This replaces the authors' compiled CUDA
    extension; it runs on CPU and CUDA and autograd differentiates it.

    Parameters
    ----------
    value : Tensor
        (B, sum H_l W_l, M, D): per-head values of every level, level after level, row-major.
    shapes : list of (int, int)
        (H_l, W_l) of each level.
    locations : Tensor
        (B, Q, M, L, P, 2) sampling locations ``(x, y)`` in [0, 1] of each level.
    weights : Tensor
        (B, Q, M, L, P) attention weights (softmax over L x P in the module).

    Returns
    -------
    Tensor
        (B, Q, M * D).
    """
    b, _, m, d = value.shape
    _, q, _, n_levels, p, _ = locations.shape
    if n_levels != len(shapes):
        raise ValueError(f"{len(shapes)} level shapes for {n_levels} levels of locations")
    out = value.new_zeros(b * m, d, q)
    start = 0
    for lvl, (h, w) in enumerate(shapes):
        v = value[:, start:start + h * w].permute(0, 2, 3, 1).reshape(b * m, d, h, w)
        start += h * w
        # points before queries, so that the weighted sum over points runs over contiguous
        # query vectors (about twice as fast on the CPU as summing the last axis of 4)
        grid = 2.0 * locations[:, :, :, lvl] - 1.0  # (B, Q, M, P, 2) in [-1, 1]
        grid = grid.permute(0, 2, 3, 1, 4).reshape(b * m, p, q, 2)
        sampled = F.grid_sample(v, grid.to(v.dtype), mode="bilinear", padding_mode="zeros",
                                align_corners=False)  # (B*M, D, P, Q)
        a = weights[:, :, :, lvl].permute(0, 2, 3, 1).reshape(b * m, 1, p, q)
        out = out + (sampled * a.to(sampled.dtype)).sum(2)
    if start != value.shape[1]:
        raise ValueError(f"value has {value.shape[1]} tokens, the shapes {start}")
    return out.view(b, m, d, q).permute(0, 3, 1, 2).reshape(b, q, m * d)


class MultiScaleDeformableAttention(nn.Module):
    """Multi-scale deformable attention (Zhu et al., "Deformable DETR", ICLR 2021, Eq. 3).

    Each query attends, per head, to ``num_points`` locations per level around its reference
    point; offsets and weights are linear maps of the query (weights softmax-normalised over
    all levels and points of a head), the values a linear map of the inputs. Offsets are in
    cells of each level (divided by the level's width and height). Initialisation as the
    Deformable DETR authors: offsets start on a ring of directions, one per head, at 1..P
    cells; uniform weights; Xavier value and output projections.

    Parameters
    ----------
    dim : int
        Query and value width C.
    num_heads : int
        Heads M (C divisible by M).
    num_levels : int
        Levels L of the value set.
    num_points : int
        Sampling points P per head and level.
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int, num_points: int = 4) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's initialisation (see the class docstring)."""
        m, n_levels, p = self.num_heads, self.num_levels, self.num_points
        nn.init.zeros_(self.sampling_offsets.weight)
        theta = torch.arange(m, dtype=torch.float32) * (2.0 * math.pi / m)
        ring = torch.stack([theta.cos(), theta.sin()], -1)
        ring = ring / ring.abs().max(-1, keepdim=True).values
        ring = ring.view(m, 1, 1, 2).repeat(1, n_levels, p, 1)
        ring = ring * torch.arange(1, p + 1, dtype=torch.float32).view(1, 1, p, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(ring.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def sampling(self, query: Tensor, reference: Tensor,
                 shapes: list[tuple[int, int]]) -> tuple[Tensor, Tensor]:
        """Sampling locations (B, Q, M, L, P, 2) and weights (B, Q, M, L, P) of ``query``
        (B, Q, C) around ``reference`` (Q, 2) or (B, Q, 2)."""
        b, q, _ = query.shape
        m, n_levels, p = self.num_heads, self.num_levels, self.num_points
        offsets = self.sampling_offsets(query).view(b, q, m, n_levels, p, 2)
        weights = self.attention_weights(query).view(b, q, m, n_levels * p)
        weights = weights.softmax(-1).view(b, q, m, n_levels, p)
        size = torch.tensor([[w, h] for h, w in shapes], dtype=offsets.dtype,
                            device=offsets.device)
        ref = reference.to(offsets.dtype).expand(b, q, 2)
        locations = ref[:, :, None, None, None, :] + offsets / size[None, None, None, :, None, :]
        return locations, weights

    def forward(self, query: Tensor, reference: Tensor, value: Tensor,
                shapes: list[tuple[int, int]]) -> Tensor:
        """Attend from ``query`` (B, Q, C) at ``reference`` (Q, 2) to ``value`` (B, sum H_l
        W_l, C) with level shapes ``shapes``; returns (B, Q, C)."""
        if len(shapes) != self.num_levels:
            raise ValueError(f"expected {self.num_levels} levels, got {len(shapes)}")
        b, s, c = value.shape
        v = self.value_proj(value).view(b, s, self.num_heads, c // self.num_heads)
        locations, weights = self.sampling(query, reference, shapes)
        return self.output_proj(deformable_sample(v, shapes, locations, weights))


class MixFFN(nn.Module):
    """Feed-forward with a depthwise 3x3 convolution between its two linear maps, applied to
    each level's grid separately (Linear C -> rC, depthwise conv, GELU, dropout, Linear
    rC -> C, dropout): the authors' ``MSMixFFN`` (not in their released code; written after
    ViT-Adapter's ``ConvFFN``, Chen et al., ICLR 2023, and SegFormer's Mix-FFN, Xie et al.,
    NeurIPS 2021). The convolution's weights are shared by the levels.

    Parameters
    ----------
    dim : int
        Token width C.
    ratio : float
        Hidden width as a multiple of C (4 in DB-SAM).
    dropout : float
        Dropout after the activation and after the output map (0.1 in DB-SAM).
    """

    def __init__(self, dim: int, ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = max(1, round(dim * ratio))
        self.fc1 = nn.Linear(dim, hidden)
        self.dwconv = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, shapes: list[tuple[int, int]]) -> Tensor:
        """(B, sum H_l W_l, C) tokens of the levels ``shapes`` -> (B, sum H_l W_l, C)."""
        x = self.fc1(x)
        b, _, c = x.shape
        parts, start = [], 0
        for h, w in shapes:
            grid = x[:, start:start + h * w].transpose(1, 2).reshape(b, c, h, w)
            parts.append(self.dwconv(grid).flatten(2).transpose(1, 2))
            start += h * w
        x = self.drop(self.act(torch.cat(parts, dim=1)))
        return self.drop(self.fc2(x))


class BilateralCrossAttention(nn.Module):
    """DB-SAM's bilateral cross-attention at one stage, as multi-scale deformable attention
    over the joint set of the ViT tokens and the convolution levels.

    Queries are every ViT token and every convolution-level token; values are the same joint
    set (L = 1 + number of convolution levels). So the ViT tokens read local detail from the
    convolution levels and the convolution levels read global context from the ViT tokens (and
    from each other) in one pass, at full resolution: no pooling of keys, as each query samples
    only ``num_points`` locations per head and level around its own position. Then a
    :class:`MixFFN` (ratio 4). Both updates are pre-LayerNorm residuals with
    :class:`DropPath` (Qin et al., MICCAI 2024, arXiv:2410.04172, Sec. 2.3; the authors'
    ``FourBranchImagePyramidAdapter`` with ``MSDeformCrossAttnBlock``: 12 heads, 4 points,
    dropout 0.1, drop path 0.3, FFN ratio 4).

    Departures: the authors run two such blocks per stage; one here (half the cost; the
    paper's figure shows one interaction per stage). To start as SAM, the ViT tokens' share of
    both updates is multiplied by a per-channel scale that starts at zero (``vit_gamma_attn``,
    ``vit_gamma_ffn``); the convolution levels' updates are the authors' from the start.

    Parameters
    ----------
    dim : int
        Width C of both branches.
    num_heads : int
        Attention heads (the ViT's: 12 for ViT-B).
    num_levels : int
        Levels of the joint set, 1 + number of convolution levels.
    num_points : int
        Sampling points per head and level.
    ffn_ratio : float
        Hidden width of the FFN as a multiple of C.
    drop_path : float
        Stochastic-depth probability of both updates.
    dropout : float
        Dropout of the attention output and inside the FFN.
    """

    def __init__(self, dim: int, num_heads: int, num_levels: int = 5, num_points: int = 4,
                 ffn_ratio: float = 4.0, drop_path: float = 0.3, dropout: float = 0.1) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(dim)
        self.value_norm = nn.LayerNorm(dim)
        self.attn = MultiScaleDeformableAttention(dim, num_heads, num_levels, num_points)
        self.attn_drop = nn.Dropout(dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = MixFFN(dim, ffn_ratio, dropout)
        self.drop_path = DropPath(drop_path)
        self.vit_gamma_attn = nn.Parameter(torch.zeros(dim))
        self.vit_gamma_ffn = nn.Parameter(torch.zeros(dim))

    def _vit_scaled(self, update: Tensor, n_vit: int, gamma: Tensor) -> Tensor:
        return torch.cat([update[:, :n_vit] * gamma, update[:, n_vit:]], dim=1)

    def forward(self, vit: Tensor, convs: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Update both branches: ViT tokens (B, H, W, C) and convolution levels, each
        (B, H_l, W_l, C); returns them updated, in the same shapes."""
        levels = [vit, *convs]
        shapes = [(t.shape[1], t.shape[2]) for t in levels]
        b, c = vit.shape[0], vit.shape[-1]
        n_vit = shapes[0][0] * shapes[0][1]
        x = torch.cat([t.reshape(b, -1, c) for t in levels], dim=1)
        ref = reference_points(shapes, device=x.device)
        update = self.attn(self.query_norm(x), ref, self.value_norm(x), shapes)
        update = self.drop_path(self.attn_drop(update))
        x = x + self._vit_scaled(update, n_vit, self.vit_gamma_attn)
        update = self.drop_path(self.ffn(self.ffn_norm(x), shapes))
        x = x + self._vit_scaled(update, n_vit, self.vit_gamma_ffn)
        out, start = [], 0
        for like, (h, w) in zip(levels, shapes, strict=True):
            # in the memory layout it came in (SAM's blocks return channels-first memory):
            # another layout would let the next kernels round differently, and untrained
            # DB-SAM would not equal SAM bit for bit
            out.append(torch.empty_like(like).copy_(x[:, start:start + h * w].view(b, h, w, c)))
            start += h * w
        return out[0], out[1:]


# --------------------------------------------------------------------------------------------
# Fusion
# --------------------------------------------------------------------------------------------


def _gate_mlp(dim: int, reduction: int) -> nn.Sequential:
    hidden = max(1, dim // reduction)
    return nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.SiLU(inplace=True),
                         nn.LayerNorm(hidden), nn.Linear(hidden, dim, bias=False))


class ViTConvFusion(nn.Module):
    """DB-SAM's ViT-convolution fusion before SAM's neck, per channel over all levels.

    For each source (every convolution level and the ViT tokens) a small MLP (Linear C ->
    C/12, SiLU, LayerNorm, Linear -> C) scores every token and channel; a softmax over the
    sources, per token and channel, weighs them: ``f = sum_s softmax_s(g_s(x_s)) * x_s``; then
    ``f = f + DropPath(FFN(LN(f)))`` and a final LayerNorm (Qin et al., MICCAI 2024,
    arXiv:2410.04172, Sec. 2.4; the authors' ``MultiConvFeatsDANE`` with the adapter's
    LayerNorm, drop path 0.3, FFN ratio 4).

    To let DB-SAM start exactly as SAM, the output is ``vit + gamma * (LN(f) - vit)`` with a
    per-channel ``gamma`` that starts at zero (a ReZero-style residual): ``gamma = 1`` is the
    authors' fusion, ``gamma = 0`` passes the ViT tokens to the neck unchanged.

    Parameters
    ----------
    dim : int
        Width C of both branches.
    num_conv : int
        Number of convolution levels.
    ffn_ratio : float
        FFN hidden width as a multiple of C.
    reduction : int
        Bottleneck of the scoring MLPs (C / ``reduction``).
    drop_path : float
        Stochastic-depth probability of the FFN update.
    """

    def __init__(self, dim: int, num_conv: int = 4, ffn_ratio: float = 4.0,
                 reduction: int = 12, drop_path: float = 0.3) -> None:
        super().__init__()
        hidden = max(1, round(dim * ffn_ratio))
        self.gates = nn.ModuleList(_gate_mlp(dim, reduction) for _ in range(num_conv + 1))
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)
        self.norm = nn.LayerNorm(dim)
        self.gamma = nn.Parameter(torch.zeros(dim))

    def weights(self, vit: Tensor, convs: list[Tensor]) -> Tensor:
        """Per-token, per-channel source weights (B, H, W, C, num_conv + 1), the ViT last;
        they sum to one over the last axis."""
        sources = [*convs, vit]
        if len(sources) != len(self.gates):
            raise ValueError(f"expected {len(self.gates) - 1} convolution levels, "
                             f"got {len(convs)}")
        return torch.stack([g(x) for g, x in zip(self.gates, sources, strict=True)],
                           dim=-1).softmax(dim=-1)

    def forward(self, vit: Tensor, convs: list[Tensor]) -> Tensor:
        """(B, H, W, C) ViT tokens and convolution levels -> (B, H, W, C) fused tokens."""
        w = self.weights(vit, convs)
        fused = (torch.stack([*convs, vit], dim=-1) * w).sum(-1)
        fused = fused + self.drop_path(self.ffn(self.ffn_norm(fused)))
        return vit + self.gamma * (self.norm(fused) - vit)

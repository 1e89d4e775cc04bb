"""DB-SAM's blocks added around SAM's frozen ViT (Qin et al., MICCAI 2024, arXiv:2410.04172):
channel-attention adapters, the convolution branch, bilateral cross-attention and the
ViT-convolution fusion. Each residual path ends in a zero-initialised projection or scale, so
an untrained DB-SAM computes SAM's image embedding exactly."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

__all__ = [
    "BilateralCrossAttention",
    "ChannelAttentionBlock",
    "ConvBranch",
    "ViTConvFusion",
]

# --------------------------------------------------------------------------------------------
# DB-SAM's added blocks
# --------------------------------------------------------------------------------------------


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


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ConvBranch(nn.Module):
    """DB-SAM's convolution branch: local detail the 16-pixel patches of the ViT lose.

    A stride-2 stem and three stride-2 stages, each a 3x3 convolution-BN-ReLU, down to 1/16 of
    the input, i.e. the ViT token grid; a 1x1 projection to the ViT width and a LayerNorm2d
    (Qin et al., MICCAI 2024, arXiv:2410.04172). Narrow and shallow by design: at 1024 x 1024
    with ViT-B's widths (32, 64, 128, 256) it costs about 8 GFLOP, under 1 % of ViT-B's
    encoder; a stride-1 convolution per stage would triple that.

    Parameters
    ----------
    dim : int
        Output width, the ViT width C.
    widths : tuple of int
        Widths of the stem and the three stages.
    """

    def __init__(self, dim: int, widths: tuple[int, ...] = (32, 64, 128, 256)) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError("widths: one for the stem and one per stage, four in all")
        layers = [_conv_bn_relu(cin, cout, 2)
                  for cin, cout in zip((3, *widths[:-1]), widths, strict=True)]
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(widths[-1], dim, kernel_size=1)
        self.norm = LayerNorm2d(dim)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) normalised images -> (B, S/16, S/16, C), channels-last like the ViT."""
        return self.norm(self.proj(self.body(images))).permute(0, 2, 3, 1).contiguous()


class _CrossAttention(nn.Module):
    """Pre-norm multi-head attention of ``query`` tokens to ``context`` tokens."""

    def __init__(self, dim: int, num_heads: int, zero_out: bool) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)
        if zero_out:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, query: Tensor, context: Tensor) -> Tensor:
        b, n, c = query.shape
        m = context.shape[1]
        h = self.num_heads
        q = self.q(self.norm_q(query)).view(b, n, h, c // h).transpose(1, 2)
        k, v = self.kv(self.norm_kv(context)).view(b, m, 2, h, c // h).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(y.transpose(1, 2).reshape(b, n, c))


class _FFN(nn.Module):
    """Pre-norm feed-forward update (LayerNorm, Linear, GELU, Linear)."""

    def __init__(self, dim: int, ratio: float, zero_out: bool = False) -> None:
        super().__init__()
        hidden = max(1, round(dim * ratio))
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)
        if zero_out:
            nn.init.zeros_(self.fc2.weight)
            nn.init.zeros_(self.fc2.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(self.norm(x))))


class BilateralCrossAttention(nn.Module):
    """DB-SAM's bilateral cross-attention between the ViT and the convolution branch.

    ViT tokens attend to convolution features and, in parallel, convolution features attend to
    ViT tokens; each side is a pre-LayerNorm multi-head attention
    (``torch.nn.functional.scaled_dot_product_attention``) added residually, then a pre-norm
    FFN, also residual (Qin et al., MICCAI 2024, arXiv:2410.04172).

    Efficient form: the key/value side is average-pooled to at most ``kv_grid`` x ``kv_grid``
    tokens, so for N queries and M = ``kv_grid``\\ :sup:`2` keys attention costs O(N M), not
    O(N\\ :sup:`2`): at 1024 x 1024 (N = 4096), M = 256. The queries keep the full grid.

    The ViT side's attention output projection and FFN output start at zero, so the block
    starts by leaving the ViT tokens unchanged (DB-SAM starts as SAM); the convolution side
    has the usual initialisation.

    Parameters
    ----------
    dim : int
        Width C of both branches.
    num_heads : int
        Attention heads (the ViT's).
    kv_grid : int
        Side of the pooled key/value grid.
    ffn_ratio : float
        FFN hidden width as a multiple of C.
    """

    def __init__(self, dim: int, num_heads: int, kv_grid: int = 16,
                 ffn_ratio: float = 4.0) -> None:
        super().__init__()
        if kv_grid < 1:
            raise ValueError("kv_grid must be at least 1")
        self.kv_grid = kv_grid
        self.vit_from_conv = _CrossAttention(dim, num_heads, zero_out=True)
        self.vit_ffn = _FFN(dim, ffn_ratio, zero_out=True)
        self.conv_from_vit = _CrossAttention(dim, num_heads, zero_out=False)
        self.conv_ffn = _FFN(dim, ffn_ratio)

    def kv_shape(self, height: int, width: int) -> tuple[int, int]:
        """The pooled key/value grid for an ``height`` x ``width`` token grid."""
        return min(self.kv_grid, height), min(self.kv_grid, width)

    def _keys(self, grid: Tensor) -> Tensor:
        b, h, w, c = grid.shape
        size = self.kv_shape(h, w)
        if size == (h, w):
            return grid.reshape(b, h * w, c)
        pooled = F.adaptive_avg_pool2d(grid.permute(0, 3, 1, 2), size)
        return pooled.flatten(2).transpose(1, 2)

    def forward(self, vit: Tensor, conv: Tensor) -> tuple[Tensor, Tensor]:
        """Update both branches; (B, H, W, C) each in, (B, H, W, C) each out."""
        b, h, w, c = vit.shape
        vit_kv, conv_kv = self._keys(vit), self._keys(conv)
        v = vit.reshape(b, h * w, c)
        v = v + self.vit_from_conv(v, conv_kv)
        v = v + self.vit_ffn(v)
        x = conv.reshape(b, h * w, c)
        x = x + self.conv_from_vit(x, vit_kv)
        x = x + self.conv_ffn(x)
        return v.view(b, h, w, c), x.view(b, h, w, c)


class ViTConvFusion(nn.Module):
    """DB-SAM's ViT-convolution fusion block, before SAM's neck.

    A per-token gate ``m = sigmoid(Linear(LN(conv)) + MLP(GAP(vit)))`` mixes the branches,
    ``f = conv * m + vit * (1 - m)``, refined by ``f = f + FFN(LN(f))`` and normalised
    (Qin et al., MICCAI 2024, arXiv:2410.04172).

    To let DB-SAM start exactly as SAM, the output is ``vit + gamma * (LN(f) - vit)`` with a
    per-channel ``gamma`` that starts at zero (a ReZero-style residual): ``gamma = 1`` is the
    paper's fusion, ``gamma = 0`` passes the ViT tokens to the neck unchanged. A gate bias of a
    large negative value would only approximate that, and the final LayerNorm would still
    change the ViT features.

    Parameters
    ----------
    dim : int
        Width C of both branches.
    ffn_ratio : float
        FFN hidden width as a multiple of C.
    """

    def __init__(self, dim: int, ffn_ratio: float = 4.0) -> None:
        super().__init__()
        hidden = max(1, dim // 4)
        self.gate_norm = nn.LayerNorm(dim)
        self.gate_local = nn.Linear(dim, 1)
        self.gate_global = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.ffn = _FFN(dim, ffn_ratio)
        self.norm = nn.LayerNorm(dim)
        self.gamma = nn.Parameter(torch.zeros(dim))

    def forward(self, vit: Tensor, conv: Tensor) -> Tensor:
        """(B, H, W, C) ViT and convolution features -> (B, H, W, C) fused tokens."""
        logit = self.gate_local(self.gate_norm(conv))
        logit = logit + self.gate_global(vit.mean(dim=(1, 2)))[:, None, None, :]
        m = torch.sigmoid(logit)
        fused = conv * m + vit * (1 - m)
        fused = self.norm(fused + self.ffn(fused))
        return vit + self.gamma * (fused - vit)

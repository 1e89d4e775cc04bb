"""The text and image encoders of DAMSM (Xu et al. 2018, "AttnGAN", CVPR, §3.3), scaled down.

AttnGAN's text encoder is a bidirectional LSTM whose hidden states are the word features and
whose last states are the sentence feature; its image encoder is Inception-v3 (mixed_6e's
17x17 map as region features, the pooled code as the global feature). We keep the text side
and replace Inception with a small CNN so that everything trains on a CPU from scratch (no
download); its 8x8 map of a 64x64 input gives the region features.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


class TextEncoder(nn.Module):
    """Bidirectional LSTM (or GRU) over word embeddings.

    ``forward(ids (B, T), lengths (B,))`` returns ``words`` (B, D, T) (zero past each length)
    and ``sentence`` (B, D), the two directions' last states concatenated; ``D = dim``.
    """

    def __init__(self, vocab_size: int, dim: int = 64, emb_dim: int = 64, rnn: str = "lstm",
                 dropout: float = 0.1) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"TextEncoder: dim must be even (two directions), got {dim}")
        if rnn not in ("lstm", "gru"):
            raise ValueError(f"TextEncoder: rnn must be 'lstm' or 'gru', got {rnn!r}")
        self.dim = dim
        self.embed = nn.Embedding(vocab_size, emb_dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        cls = nn.LSTM if rnn == "lstm" else nn.GRU
        self.rnn = cls(emb_dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, ids: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        x = self.drop(self.embed(ids))
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        h = hidden[0] if isinstance(hidden, tuple) else hidden  # (2, B, D/2)
        sentence = torch.cat([h[0], h[1]], dim=1)
        return out.transpose(1, 2), sentence


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout),
                         nn.LeakyReLU(0.2, inplace=True))


class ImageEncoder(nn.Module):
    """Small CNN: ``forward(x (B, C, H, W) in [-1, 1])`` -> ``regions`` (B, D, R) with
    R = (in_size / 8)^2 (an 8x8 map at 64x64) and ``code`` (B, D), the global feature. Inputs
    of another size are resized to ``in_size`` first."""

    def __init__(self, dim: int = 64, channels: int = 3, width: int = 32,
                 in_size: int = 64) -> None:
        super().__init__()
        self.dim, self.in_size = dim, in_size
        self.features = nn.Sequential(_block(channels, width), _block(width, 2 * width),
                                      _block(2 * width, 4 * width))  # 64 -> 8
        self.region = nn.Conv2d(4 * width, dim, 1)
        self.top = nn.Sequential(_block(4 * width, 8 * width), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(8 * width, dim))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] != self.in_size or x.shape[-2] != self.in_size:
            x = F.interpolate(x, size=(self.in_size, self.in_size), mode="bilinear",
                              align_corners=False, antialias=True)
        h = self.features(x)
        return self.region(h).flatten(2), self.top(h)

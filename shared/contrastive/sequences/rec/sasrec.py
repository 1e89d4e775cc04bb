"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

An item sequence ``s_1 .. s_L`` (ids ``1..n_items``; 0 pads, ``n_items + 1`` is CL4SRec's mask
token) is embedded as ``E[s_t] + P[t]`` (item and learned position embeddings, eq. 1-2), passed
through ``n_layers`` causal self-attention blocks (eq. 3-5: multi-head attention that sees only
earlier positions, then a point-wise feed-forward network, each with a residual connection,
dropout and layer normalisation) and the hidden state of the last position is the sequence
representation ``h`` (B, H). The score of item ``i`` is ``<h, E[i]>`` with the shared item
embedding (eq. 6), so next-item prediction is a softmax over the whole catalogue.

Departures, and why
-------------------
- Blocks are post-norm (``LayerNorm(x + Dropout(f(x)))``) and weights are drawn from
  ``N(0, 0.02)``, as in RecBole's ``TransformerEncoder`` that CL4SRec's and MCLRec's released
  code use; the SASRec paper normalises before each sub-layer. We follow the code the MCLRec
  numbers come from.
- Sequences are left-padded (the last item is always in the last column), so no gather by
  length is needed. The attention is written out (matmul, softmax) rather than
  ``nn.MultiheadAttention`` so that second derivatives through ``torch.func.functional_call``
  (MCLRec's meta step) use plain autograd ops. Masked scores are a large finite negative, so a
  padded query row (never read) stays finite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["SASRec"]

_MASKED = -1e4


class _Block(nn.Module):
    def __init__(self, hidden: int, heads: int, inner: int, dropout: float, attn_dropout: float,
                 eps: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"SASRec: hidden size {hidden} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm1 = nn.LayerNorm(hidden, eps=eps)
        self.ff1 = nn.Linear(hidden, inner)
        self.ff2 = nn.Linear(inner, hidden)
        self.norm2 = nn.LayerNorm(hidden, eps=eps)
        self.drop = nn.Dropout(dropout)
        self.attn_drop = nn.Dropout(attn_dropout)

    def forward(self, x: Tensor, bias: Tensor) -> Tensor:
        b, n, h = x.shape
        d = h // self.heads
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d).permute(2, 0, 3, 1, 4)
        att = q @ k.transpose(-1, -2) / math.sqrt(d) + bias  # (B, heads, L, L)
        att = self.attn_drop(att.softmax(-1))
        ctx = (att @ v).transpose(1, 2).reshape(b, n, h)
        x = self.norm1(x + self.drop(self.out(ctx)))
        return self.norm2(x + self.drop(self.ff2(F.gelu(self.ff1(x)))))


class SASRec(nn.Module):
    """SASRec encoder with a shared item embedding for scoring.

    Parameters
    ----------
    n_items : int
        Catalogue size; item ids are ``1..n_items``, 0 is padding and ``n_items + 1`` the mask
        token of CL4SRec's mask augmentation.
    max_len : int
        Longest sequence (the number of position embeddings).
    hidden, n_layers, n_heads, inner : int
        Width, blocks, attention heads and feed-forward width (MCLRec: 64, 2, 2, 256).
    dropout, attn_dropout : float
        Dropout of the hidden states and of the attention weights (MCLRec: 0.5, 0.5).
    """

    def __init__(self, n_items: int, max_len: int, hidden: int = 64, n_layers: int = 2,
                 n_heads: int = 2, inner: int = 256, dropout: float = 0.5,
                 attn_dropout: float = 0.5, eps: float = 1e-12, init_std: float = 0.02) -> None:
        super().__init__()
        self.n_items, self.max_len, self.hidden = int(n_items), int(max_len), int(hidden)
        self.item_emb = nn.Embedding(self.n_items + 2, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(self.max_len, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, n_heads, inner, dropout, attn_dropout, eps)
                                    for _ in range(n_layers))
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, 0.0, init_std)
            if isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    @property
    def mask_token(self) -> int:
        return self.n_items + 1

    def forward(self, seqs: Tensor) -> Tensor:
        """Sequence representations ``h`` (B, H) of left-padded ``seqs`` (B, L), L <= max_len."""
        if seqs.ndim != 2 or seqs.shape[1] > self.max_len:
            raise ValueError(f"SASRec: seqs must be (B, L<= {self.max_len}), got "
                             f"{tuple(seqs.shape)}")
        n = seqs.shape[1]
        pos = torch.arange(self.max_len - n, self.max_len, device=seqs.device)
        x = self.drop(self.norm(self.item_emb(seqs) + self.pos_emb(pos)[None]))
        causal = torch.ones(n, n, dtype=torch.bool, device=seqs.device).tril()
        keep = causal[None, None] & (seqs > 0)[:, None, None, :]
        bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device).masked_fill(~keep, _MASKED)
        for block in self.blocks:
            x = block(x, bias)
        return x[:, -1]

    def item_logits(self, h: Tensor) -> Tensor:
        """Scores ``<h, E[i]>`` (B, n_items) of every real item; column ``j`` is item ``j + 1``."""
        return h @ self.item_emb.weight[1:self.n_items + 1].T

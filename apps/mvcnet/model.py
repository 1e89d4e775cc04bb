"""The MVCNet dual-branch network: an IFNet-style CNN and a channel-token Transformer.

Paper: Wang, Li, Chen, Wu, "MVCNet: Multi-View Contrastive Network for Motor Imagery
Classification", Knowledge-Based Systems 2025, arXiv:2502.17482 — the dual-branch architecture
(CNN branch for local spatio-temporal features, Transformer branch for global temporal
dependencies, their features fused and aligned by the cross-view / cross-model contrastive
losses). The CNN branch is IFNet (Wang, Yao, Wang, IEEE TNSRE 31:1900-1911, 2023) with a single
frequency band, as in the authors' code (github.com/wzwvv/MVCNet, ``radix=1``).

Example
-------
>>> import torch
>>> net = MVCNet(n_chans=22, n_times=1000, n_classes=2, trans_hidden=64)
>>> out = net(torch.randn(4, 22, 1000))
>>> sorted(out), tuple(out["cnn"].shape), tuple(out["logits"].shape)
(['cnn', 'logits', 'proj'], (4, 512), (4, 2))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MVCNet"]

ChannelMap = tuple[Sequence[int], Sequence[float]]

_INFER_MODES = ("cnn", "fused")


class MVCNet(nn.Module):
    """Dual-branch CNN + Transformer network of MVCNet (Wang et al., KBS 2025).

    CNN branch (IFNet stem, one band): pointwise ``Conv1d(C -> F_n, k=1)`` + BN, depthwise
    ``Conv1d(F_n, k=kernel_size, groups=F_n, padding='same')`` + BN, GELU, ``AvgPool1d(pool)``,
    dropout, flatten; its output has ``feature_dim = n_filters * (n_times // pool)`` values (the
    ``n_times % pool`` trailing samples are dropped by the pooling, which is what the authors'
    "drop the last sample" achieves for 1001-sample BNCI2014001 trials).

    Transformer branch: every channel is one token whose features are the samples of the trial
    (``d_model = n_times``), encoded by ``nn.TransformerEncoder`` (``trans_layers`` post-norm
    layers, ``trans_heads`` heads, feed-forward width ``max(2 * d_model, 128)``, dropout 0.1),
    flattened to ``C * d_model`` and projected by Linear(-> ``trans_hidden``) - LayerNorm - ReLU -
    Linear(-> ``feature_dim``) - Tanh, so that both branches live in the same space for the
    cross-model contrastive loss. ``d_model`` must be divisible by ``trans_heads``: when it is
    not, the last ``n_times % trans_heads`` samples are cropped (``d_model = n_times -
    n_times % trans_heads``), which again reproduces the authors' "drop the last sample" of
    1001-sample trials with 2 heads; no learned input projection is added.

    The linear classifier reads the CNN features (the authors' test-time path).

    Parameters
    ----------
    n_chans : int
        Number of EEG channels ``C``.
    n_times : int
        Number of samples per trial ``T`` (must be ``>= pool`` and ``>= trans_heads``).
    n_classes : int
        Number of classes ``K``.
    n_filters : int, default 64
        Feature maps of the CNN branch (IFNet ``out_planes``).
    kernel_size : int, default 63
        Length of the depthwise temporal convolution.
    pool : int, default 125
        Average-pooling window and stride (IFNet ``patch_size``).
    dropout : float, default 0.5
        Dropout after pooling in the CNN branch.
    trans_heads : int, default 2
        Attention heads of the Transformer branch.
    trans_layers : int, default 1
        Encoder layers of the Transformer branch.
    trans_hidden : int, default 2048
        Hidden width of the Transformer projection head (the authors use 2048).

    Attributes
    ----------
    n_chans, n_times, n_outputs : int
        Braindecode-style metadata (``EEGModuleMixin`` names); ``n_outputs == n_classes``.
    feature_dim : int
        ``F``, the size of both the CNN features and the Transformer projection.
    d_model : int
        Token width of the Transformer branch.

    Notes
    -----
    Inputs are ``(B, C, T)`` floats at the µV scale, already aligned / standardised by the
    caller (the authors apply Euclidean alignment before the network). Convolution and linear
    weights of the CNN branch follow IFNet's initialisation (truncated normal, std 0.01, zero
    biases), which we also use for the classifier; the Transformer branch keeps PyTorch's
    defaults, as in the authors' code.

    The modules (``cnn``, ``encoder``, ``projector``, ``classifier``) hold the parameters and
    define the function; :meth:`forward` evaluates them along faster paths with the same
    parameters and results (up to rounding): on the CPU the CNN branch runs time-major
    (:meth:`_cnn_time_major`); the encoder layer runs batch-first without
    ``nn.MultiheadAttention``'s layout copies (:func:`_post_norm_layer`); and, given
    ``channel_maps``, the raw trials and their sign-flipped / reflected views share one input
    projection.
    """

    def __init__(
        self,
        n_chans: int,
        n_times: int,
        n_classes: int,
        *,
        n_filters: int = 64,
        kernel_size: int = 63,
        pool: int = 125,
        dropout: float = 0.5,
        trans_heads: int = 2,
        trans_layers: int = 1,
        trans_hidden: int = 2048,
    ) -> None:
        super().__init__()
        for name, value in {
            "n_chans": n_chans,
            "n_times": n_times,
            "n_classes": n_classes,
            "n_filters": n_filters,
            "kernel_size": kernel_size,
            "pool": pool,
            "trans_heads": trans_heads,
            "trans_layers": trans_layers,
            "trans_hidden": trans_hidden,
        }.items():
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if n_times < pool:
            raise ValueError(
                f"n_times={n_times} is shorter than pool={pool}: the CNN branch would have no "
                "features; lower `pool` or use longer trials"
            )
        if n_times < trans_heads:
            raise ValueError(f"n_times={n_times} must be >= trans_heads={trans_heads}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        self.n_chans = int(n_chans)
        self.n_times = int(n_times)
        self._pool = int(pool)
        self.n_outputs = int(n_classes)
        self.feature_dim = int(n_filters) * (self.n_times // int(pool))
        self.d_model = self.n_times - self.n_times % int(trans_heads)

        # CNN branch: IFNet stem with a single band.
        self.cnn = nn.Sequential(
            nn.Conv1d(n_chans, n_filters, kernel_size=1, bias=False),
            nn.BatchNorm1d(n_filters),
            nn.Conv1d(
                n_filters,
                n_filters,
                kernel_size=kernel_size,
                groups=n_filters,
                padding="same",
                bias=False,
            ),
            nn.BatchNorm1d(n_filters),
            nn.GELU(),
            nn.AvgPool1d(pool, pool),
            nn.Dropout(dropout),
            nn.Flatten(1),
        )

        # Transformer branch: channels as tokens, the trial as the token's features.
        layer = nn.TransformerEncoderLayer(
            d_model=self.d_model,
            nhead=trans_heads,
            dim_feedforward=max(2 * self.d_model, 128),
            dropout=0.1,
            batch_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=trans_layers, enable_nested_tensor=False
        )
        self.projector = nn.Sequential(
            nn.Linear(self.n_chans * self.d_model, trans_hidden),
            nn.LayerNorm(trans_hidden),
            nn.ReLU(),
            nn.Linear(trans_hidden, self.feature_dim),
            nn.Tanh(),
        )

        self.classifier = nn.Linear(self.feature_dim, self.n_outputs)

        self.cnn.apply(_ifnet_init)
        self.classifier.apply(_ifnet_init)

    # ------------------------------------------------------------------ branches
    def _check(self, x: Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.n_chans or x.shape[2] != self.n_times:
            raise ValueError(
                f"expected input of shape (B, {self.n_chans}, {self.n_times}), got {tuple(x.shape)}"
            )

    def cnn_features(self, x: Tensor) -> Tensor:
        """CNN-branch features ``(B, F)`` of trials ``x: (B, C, T)``.

        On the CPU (odd kernel length) the branch runs time-major (see
        :meth:`_cnn_time_major`): the same function and parameters as ``self.cnn``, several
        times faster to train; elsewhere ``self.cnn`` runs as is.
        """
        self._check(x)
        if x.device.type == "cpu" and self.cnn[2].kernel_size[0] % 2 == 1:
            return self._cnn_time_major(x)
        return self.cnn(x)

    def _cnn_time_major(self, x: Tensor) -> Tensor:
        """``self.cnn(x)`` computed on ``(B, T, F)`` (time-major) activations.

        The pointwise convolution becomes one matmul, both BatchNorms see ``(B * T, F)`` rows
        (the same per-filter statistics over batch and time), the depthwise convolution runs
        channels-last (:class:`_DepthwiseTimeConv`; PyTorch's own channel-first depthwise
        ``Conv1d`` with a 63-tap kernel is about 10x slower to train on the CPU), and the
        pooling is a reshape-and-sum. The output is in ``nn.Flatten``'s (filter, window) order.
        """
        pointwise, bn1, depthwise, bn2, act, _, drop = list(self.cnn)[:7]
        n_batch, n_times = x.shape[0], x.shape[2]
        h = torch.matmul(x.transpose(1, 2), pointwise.weight[:, :, 0].t())  # (B, T, F)
        if pointwise.bias is not None:
            h = h + pointwise.bias
        n_filters = h.shape[-1]
        h = bn1(h.reshape(-1, n_filters)).view(n_batch, n_times, n_filters)
        h = _DepthwiseTimeConv.apply(h, depthwise.weight)
        if depthwise.bias is not None:
            h = h + depthwise.bias
        n_win = n_times // self._pool
        h = bn2(h.reshape(-1, n_filters)).view(n_batch, n_times, n_filters)
        # The activation is elementwise: apply it to the pooled samples only, shaped
        # (B, window, sample, F), so that the pooling's gradient reaches it without a copy.
        h = act(h[:, : n_win * self._pool].view(n_batch, n_win, self._pool, n_filters))
        h = h.sum(2) / self._pool  # (B, n_win, F)
        return drop(h.transpose(1, 2).reshape(n_batch, n_filters * n_win))

    def transformer_projection(
        self, x: Tensor, channel_maps: Sequence[ChannelMap | None] | None = None
    ) -> Tensor:
        """Transformer-branch projection ``(B, F)`` (in ``[-1, 1]``) of ``x: (B, C, T)``.

        ``channel_maps``: see :meth:`forward`.
        """
        self._check(x)
        h = x[..., : self.d_model]  # (B, C, d_model)
        maps = _checked_maps(x, channel_maps)
        for layer in self.encoder.layers:
            h = _post_norm_layer(layer, h, maps)
            maps = None  # only the first layer's input is a linear function of the trials
        if self.encoder.norm is not None:
            h = self.encoder.norm(h)
        return self.projector(h.flatten(1))

    # ------------------------------------------------------------------ API
    def forward(
        self, x: Tensor, channel_maps: Sequence[ChannelMap | None] | None = None
    ) -> dict[str, Tensor]:
        """Run both branches.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
            Trials at the µV scale.
        channel_maps : sequence of ``(perm, sign)`` or None, optional
            For a training batch of the raw trials and their views stacked, ``x = cat([raw,
            view_1, ..., view_V])`` (``V = len(channel_maps)``, equal chunks):
            ``channel_maps[k - 1] = (perm, sign)`` states that chunk ``k`` is the raw chunk with
            channel ``i`` replaced by ``sign[i]`` times channel ``perm[i]`` (sign flip, channel
            reflection: :meth:`medcl.mvcnet.views.ViewPipeline.channel_maps`); ``None`` for other
            views. The Transformer's input projection, linear in the channel tokens, is then
            derived from the raw chunk's rather than recomputed: the outputs and gradients are
            those of ``forward(x)`` (up to rounding), the statement is checked on ``x``.

        Returns
        -------
        dict
            ``"cnn"``: CNN features ``(B, F)``; ``"proj"``: Transformer projection ``(B, F)``;
            ``"logits"``: classifier on the CNN features ``(B, K)``.
        """
        cnn = self.cnn_features(x)
        proj = self.transformer_projection(x, channel_maps)
        return {"cnn": cnn, "proj": proj, "logits": self.classifier(cnn)}

    def predict_logits(self, x: Tensor, infer: str = "cnn") -> Tensor:
        """Class logits ``(B, K)`` for trials ``x: (B, C, T)``.

        Parameters
        ----------
        x : Tensor, shape (B, C, T)
        infer : {"cnn", "fused"}
            ``"cnn"`` — classifier on the CNN features only; this is what the authors' code
            evaluates at test time (the Transformer branch is not run). ``"fused"`` — classifier
            on ``(cnn + proj) / 2``, *our reading* of the paper's statement that the final
            representations of both branches are fused; the authors' code does not do this, and
            the classifier is trained on CNN features only, so treat it as an experiment.

        Returns
        -------
        Tensor, shape (B, K)
        """
        if infer == "cnn":
            return self.classifier(self.cnn_features(x))
        if infer == "fused":
            out = self.forward(x)
            return self.classifier((out["cnn"] + out["proj"]) / 2)
        raise ValueError(f"infer must be one of {_INFER_MODES}, got {infer!r}")


class _Map(NamedTuple):
    perm: Tensor  # (C,) long
    sign: Tensor  # (C,) float
    kind: str  # "perm" (all signs +1), "flip" (identity, all -1) or "signed"


def _checked_maps(
    x: Tensor, channel_maps: Sequence[ChannelMap | None] | None
) -> list[_Map | None] | None:
    """``channel_maps`` as :class:`_Map` after checking them against the chunks of ``x``;
    ``None`` when there is nothing to share."""
    if not channel_maps or all(m is None for m in channel_maps) or x.requires_grad:
        return None
    n_chunks = 1 + len(channel_maps)
    if x.shape[0] % n_chunks:
        raise ValueError(f"{x.shape[0]} trials do not split into {n_chunks} equal chunks")
    chunks = x.unflatten(0, (n_chunks, -1))
    out: list[tuple[Tensor, Tensor] | None] = []
    for k, m in enumerate(channel_maps, 1):
        if m is None:
            out.append(None)
            continue
        perm = torch.as_tensor(m[0], dtype=torch.long, device=x.device)
        sign = torch.as_tensor(m[1], dtype=x.dtype, device=x.device)
        if perm.shape != (x.shape[1],) or sign.shape != (x.shape[1],):
            raise ValueError(f"channel map {k}: perm and sign need {x.shape[1]} entries")
        if not torch.equal(chunks[k], chunks[0].index_select(1, perm) * sign[:, None]):
            raise ValueError(f"chunk {k} of the batch is not its channel map of chunk 0")
        if bool((sign == 1).all()):
            kind = "perm"
        elif bool((sign == -1).all()) and torch.equal(perm, torch.arange(len(perm)).to(perm)):
            kind = "flip"
        else:
            kind = "signed"
        out.append(_Map(perm, sign, kind))
    return out


class _SharedInProjection(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` of stacked chunks ``x = cat([raw, view_1, ...])`` where
    some views are signed channel (token) permutations of ``raw`` (``maps``, see
    :func:`_checked_maps`): their rows are gathered from the raw chunk's output, and their
    gradient folded into the raw chunk's before the single weight-gradient product. ``x``
    gets no gradient (it is data)."""

    @staticmethod
    def forward(ctx, x, weight, bias, maps):  # type: ignore[override]
        n_chunks = 1 + len(maps)
        chunks = x.unflatten(0, (n_chunks, -1))  # (n, B, L, E)
        out = x.new_empty(chunks.shape[:-1] + (weight.shape[0],))
        rows = chunks.shape[1] * chunks.shape[2]
        computed = [0] + [k for k, m in enumerate(maps, 1) if m is None]
        for k in computed:
            torch.addmm(
                bias, chunks[k].reshape(rows, -1), weight.t(), out=out[k].view(rows, -1)
            )
        for k, m in enumerate(maps, 1):
            if m is None:
                continue
            if m.kind == "flip":
                torch.sub(2 * bias, out[0], out=out[k])  # -(raw - bias) + bias
            else:
                torch.index_select(out[0], 1, m.perm, out=out[k])
                if m.kind == "signed":  # sign * (raw - bias) + bias
                    out[k].sub_(bias).mul_(m.sign[:, None]).add_(bias)
        ctx.maps, ctx.computed = maps, computed
        ctx.save_for_backward(x)
        return out.flatten(0, 1)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        n_chunks = 1 + len(ctx.maps)
        chunks = x.unflatten(0, (n_chunks, -1))
        g = grad.unflatten(0, (n_chunks, -1))
        rows = chunks.shape[1] * chunks.shape[2]
        grad_raw = g[0].clone(memory_format=torch.contiguous_format)
        for k, m in enumerate(ctx.maps, 1):
            if m is None:
                continue
            if m.kind == "flip":
                grad_raw.sub_(g[k])
            else:
                grad_raw.index_add_(1, m.perm, g[k] if m.kind == "perm" else g[k] * m.sign[:, None])
        grad_w = grad_raw.view(rows, -1).t() @ chunks[0].reshape(rows, -1)
        for k in ctx.computed[1:]:
            grad_w.addmm_(g[k].reshape(rows, -1).t(), chunks[k].reshape(rows, -1))
        grad_b = g.sum((0, 1, 2)) if ctx.needs_input_grad[2] else None
        return None, grad_w, grad_b, None


def _post_norm_layer(
    layer: nn.TransformerEncoderLayer,
    x: Tensor,
    maps: list[_Map | None] | None = None,
) -> Tensor:
    """``layer(x)`` for our post-norm, ReLU, batch-first encoder layer, computed batch-first.

    The same function and parameters as ``nn.TransformerEncoderLayer.forward`` (no masks):
    ``x = norm1(x + drop1(attn(x)))``, ``x = norm2(x + drop2(linear2(drop(relu(linear1(x))))))``.
    ``nn.MultiheadAttention`` transposes its batch-first input to sequence-first and back
    (copies of every activation); here the packed input projection goes to
    :class:`_PackedAttention` (CPU) or ``scaled_dot_product_attention`` as it is, and with
    ``maps`` (first layer of a stacked multi-view batch) it is :class:`_SharedInProjection`.
    The layer must be post-norm with ReLU, as :class:`MVCNet` builds it.
    """
    attn = layer.self_attn
    heads = attn.num_heads
    p_drop = attn.dropout if layer.training else 0.0
    if maps is None or attn.in_proj_bias is None:
        qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)  # (B, L, 3 * width)
    else:
        qkv = _SharedInProjection.apply(x, attn.in_proj_weight, attn.in_proj_bias, maps)
    if x.device.type == "cpu":
        a = _PackedAttention.apply(qkv, heads, p_drop)
    else:
        a = _sdpa_attention(qkv, heads, p_drop)
    a = attn.out_proj(a)
    x = layer.norm1(x + layer.dropout1(a))
    ff = layer.linear2(layer.dropout(F.relu(layer.linear1(x))))
    return layer.norm2(x + layer.dropout2(ff))


def _sdpa_attention(qkv: Tensor, heads: int, p: float) -> Tensor:
    """:class:`_PackedAttention` by ``scaled_dot_product_attention`` (fused kernels on GPUs)."""
    n_batch, n_tok, width3 = qkv.shape
    q, k, v = qkv.view(n_batch, n_tok, 3, heads, width3 // (3 * heads)).permute(2, 0, 3, 1, 4)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    return a.transpose(1, 2).reshape(n_batch, n_tok, width3 // 3)


class _PackedAttention(torch.autograd.Function):
    """Scaled dot-product attention of packed ``qkv: (B, L, 3 * E)`` (queries, keys, values,
    each ``heads`` blocks of ``E / heads`` features, as ``nn.MultiheadAttention``'s input
    projection lays them out), dropout ``p`` on the attention weights; returns ``(B, L, E)``.

    What ``scaled_dot_product_attention`` computes, with every product a ``bmm`` on strided
    views of ``qkv`` and the gradient written into one ``(B, L, 3 * E)`` buffer: no per-head
    copies of the wide activations, forward or backward (those copies cost more than the
    attention itself with a few dozen channel tokens).
    """

    @staticmethod
    def forward(ctx, qkv: Tensor, heads: int, p: float) -> Tensor:  # type: ignore[override]
        width = qkv.shape[-1] // 3
        dh = width // heads
        scale = dh**-0.5
        out = qkv.new_empty(qkv.shape[:-1] + (width,))
        saved = []
        for h in range(heads):
            q, k, v = (qkv[..., i * width + h * dh : i * width + (h + 1) * dh] for i in range(3))
            w = torch.softmax(torch.bmm(q, k.transpose(1, 2)).mul_(scale), dim=-1)
            keep = None
            if p > 0.0:
                keep = torch.empty_like(w).bernoulli_(1.0 - p).div_(1.0 - p)
            out[..., h * dh : (h + 1) * dh] = torch.bmm(w if keep is None else w * keep, v)
            saved += [w] if keep is None else [w, keep]
        ctx.heads, ctx.p, ctx.scale = heads, p, scale
        ctx.save_for_backward(qkv, *saved)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:  # type: ignore[override]
        qkv, *saved = ctx.saved_tensors
        width = qkv.shape[-1] // 3
        dh = width // ctx.heads
        grad_qkv = torch.empty_like(qkv)
        per_head = 2 if ctx.p > 0.0 else 1
        for h in range(ctx.heads):
            w, *keep = saved[h * per_head : (h + 1) * per_head]
            sl = [slice(i * width + h * dh, i * width + (h + 1) * dh) for i in range(3)]
            q, k, v = (qkv[..., s] for s in sl)
            g = grad[..., h * dh : (h + 1) * dh]
            w_used = w * keep[0] if keep else w
            grad_qkv[..., sl[2]] = torch.bmm(w_used.transpose(1, 2), g)
            grad_w = torch.bmm(g, v.transpose(1, 2))
            if keep:
                grad_w = grad_w * keep[0]
            grad_s = w * (grad_w - (grad_w * w).sum(-1, keepdim=True))
            grad_s = grad_s.mul_(ctx.scale)
            grad_qkv[..., sl[0]] = torch.bmm(grad_s, k)
            grad_qkv[..., sl[1]] = torch.bmm(grad_s.transpose(1, 2), q)
        return grad_qkv, None, None


def _channels_last(h: Tensor, along_height: bool) -> Tensor:
    """``(B, T, F)`` contiguous as a channels-last ``(B, F, T, 1)`` (``along_height``) or
    ``(B, F, 1, T)`` image, without a copy and with the canonical channels-last strides (oneDNN
    mis-handles some equivalent strides of the size-1 axis)."""
    b, t, f = h.shape
    if along_height:
        return h.as_strided((b, f, t, 1), (t * f, 1, f, f))
    return h.as_strided((b, f, 1, t), (t * f, 1, t * f, f))


class _DepthwiseTimeConv(torch.autograd.Function):
    """Depthwise ``padding='same'`` convolution along time of time-major ``h: (B, T, F)`` with
    ``weight: (F, 1, K)``, ``K`` odd, returning ``(B, T, F)``.

    Mathematically ``conv1d(h.transpose(1, 2), weight, padding='same', groups=F)``. oneDNN is
    fast on this channels-last layout for the forward pass and the input gradient when time is
    the image width, and for the weight gradient when time is the image height, so each
    product uses the view that suits it (views of the same memory, no copies).
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor) -> Tensor:  # type: ignore[override]
        h = h.contiguous()
        n_batch, n_times, n_filters = h.shape
        pad = weight.shape[-1] // 2
        out = F.conv2d(
            _channels_last(h, False), weight.unsqueeze(2), padding=(0, pad), groups=n_filters
        )
        ctx.save_for_backward(h, weight)
        return out.permute(0, 2, 3, 1).reshape(n_batch, n_times, n_filters)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None]:  # type: ignore[override]
        h, weight = ctx.saved_tensors
        grad = grad.contiguous()
        n_batch, n_times, n_filters = h.shape
        pad = weight.shape[-1] // 2
        conv_backward = torch.ops.aten.convolution_backward
        grad_h = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_h = conv_backward(
                _channels_last(grad, False), _channels_last(h, False), weight.unsqueeze(2),
                None, (1, 1), (0, pad), (1, 1), False, (0, 0), n_filters, (True, False, False),
            )[0]
            grad_h = grad_h.permute(0, 2, 3, 1).reshape(n_batch, n_times, n_filters)
        if ctx.needs_input_grad[1]:
            grad_w = conv_backward(
                _channels_last(grad, True), _channels_last(h, True), weight.unsqueeze(3),
                None, (1, 1), (pad, 0), (1, 1), False, (0, 0), n_filters, (False, True, False),
            )[1]
            grad_w = grad_w.reshape(weight.shape)
        return grad_h, grad_w


def _ifnet_init(m: nn.Module) -> None:
    """IFNet initialisation: truncated normal (std 0.01) weights, zero biases, unit BN."""
    if isinstance(m, nn.Linear | nn.Conv1d):
        nn.init.trunc_normal_(m.weight, std=0.01)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm1d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)

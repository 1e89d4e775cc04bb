"""Speed kernels of :class:`medcl.mvcnet.model.MVCNet` (its ``fast=True`` path).

Nothing here changes what the network computes: every function evaluates the plain
``torch.nn`` modules that :class:`~medcl.mvcnet.model.MVCNet` holds (``cnn``, ``encoder``) with
their own parameters, along a faster route, and returns the same values and gradients up to
rounding (the tests in ``tests/apps/mvcnet/test_model.py`` run both paths). What they avoid:

- :func:`cnn_branch` — on the CPU the IFNet stem runs time-major, ``(B, T, F)``: the pointwise
  convolution is one matmul and the depthwise temporal convolution runs channels-last through
  oneDNN (:class:`DepthwiseTimeConv`, whose backward calls ``aten.convolution_backward`` with the
  layout that suits each gradient); PyTorch's channel-first depthwise ``Conv1d`` with a 63-tap
  kernel is about 10x slower to train on the CPU.
- :func:`encode` — the post-norm encoder layer runs batch-first without
  ``nn.MultiheadAttention``'s layout copies (:func:`post_norm_layer`), its attention on the packed
  input projection (:class:`PackedAttention` on the CPU, :func:`sdpa_attention` elsewhere); given
  channel maps (sign-flipped / reflected views stacked after the raw trials), the views' input
  projection is derived from the raw trials' (:class:`SharedInProjection`).

These kernels lean on details of PyTorch (``aten.convolution_backward``'s signature, oneDNN's
channels-last strides, ``nn.TransformerEncoderLayer``'s attribute names): if a PyTorch upgrade
breaks one, ``MVCNet(..., fast=False)`` runs the plain modules with the same parameters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ChannelMap = tuple[Sequence[int], Sequence[float]]

__all__ = [
    "DepthwiseTimeConv",
    "PackedAttention",
    "SharedInProjection",
    "autocast_apply",
    "checked_maps",
    "cnn_branch",
    "cnn_time_major",
    "encode",
    "post_norm_layer",
    "sdpa_attention",
]


def autocast_apply(function: type[torch.autograd.Function], *args,
                   dtype: torch.dtype | None = None):
    """``function.apply(*args)``, also under autocast (``torch.autocast``, mixed precision).

    A custom ``Function``'s backward runs outside autocast, so its forward must compute in one
    dtype: under autocast the floating-point tensor arguments are cast to ``dtype`` (default:
    the autocast dtype, bfloat16 / float16) and the forward runs with autocast off, as
    ``torch.amp.custom_fwd(cast_inputs=...)`` does; the casts are differentiable, so float32
    parameters get float32 gradients. Without autocast: ``function.apply(*args)``.
    """
    device = next(a for a in args if isinstance(a, Tensor)).device.type
    if not torch.is_autocast_enabled(device):
        return function.apply(*args)
    dtype = dtype or torch.get_autocast_dtype(device)
    cast = [a.to(dtype) if isinstance(a, Tensor) and a.is_floating_point() else a for a in args]
    with torch.autocast(device, enabled=False):
        return function.apply(*cast)


# ---------------------------------------------------------------------------- CNN branch
def cnn_branch(cnn: nn.Sequential, x: Tensor) -> Tensor:
    """``cnn(x)`` for MVCNet's CNN branch (IFNet stem), time-major on the CPU.

    Parameters
    ----------
    cnn : nn.Sequential
        ``MVCNet.cnn``: pointwise ``Conv1d``, ``BatchNorm1d``, depthwise ``Conv1d``,
        ``BatchNorm1d``, activation, ``AvgPool1d``, ``Dropout``, ``Flatten``.
    x : Tensor, shape (B, C, T)

    Returns
    -------
    Tensor, shape (B, F * (T // pool))
        :func:`cnn_time_major` on the CPU with an odd kernel length (what
        :class:`DepthwiseTimeConv` supports), ``cnn(x)`` otherwise.
    """
    if x.device.type == "cpu" and cnn[2].kernel_size[0] % 2 == 1:
        return cnn_time_major(cnn, x)
    return cnn(x)


def cnn_time_major(cnn: nn.Sequential, x: Tensor) -> Tensor:
    """``cnn(x)`` computed on ``(B, T, F)`` (time-major) activations.

    The pointwise convolution becomes one matmul, both BatchNorms see ``(B * T, F)`` rows (the
    same per-filter statistics over batch and time, so the running statistics update alike), the
    depthwise convolution runs channels-last (:class:`DepthwiseTimeConv`), and the pooling is a
    reshape-and-sum. The output is in ``nn.Flatten``'s (filter, window) order.

    Parameters
    ----------
    cnn : nn.Sequential
        See :func:`cnn_branch`; the depthwise kernel length must be odd.
    x : Tensor, shape (B, C, T)

    Returns
    -------
    Tensor, shape (B, F * (T // pool))
    """
    pointwise, bn1, depthwise, bn2, act, avg, drop = list(cnn)[:7]
    pool = avg.kernel_size[0]
    n_batch, n_times = x.shape[0], x.shape[2]
    h = torch.matmul(x.transpose(1, 2), pointwise.weight[:, :, 0].t())  # (B, T, F)
    if pointwise.bias is not None:
        h = h + pointwise.bias
    n_filters = h.shape[-1]
    h = bn1(h.reshape(-1, n_filters)).view(n_batch, n_times, n_filters)
    # float32 under autocast too: oneDNN's bfloat16 depthwise convolution on this layout hung
    # (never returned) for a few filters on a Zen 4 CPU (torch 2.14)
    h = autocast_apply(DepthwiseTimeConv, h, depthwise.weight, dtype=torch.float32)
    if depthwise.bias is not None:
        h = h + depthwise.bias
    n_win = n_times // pool
    h = bn2(h.reshape(-1, n_filters)).view(n_batch, n_times, n_filters)
    # The activation is elementwise: apply it to the pooled samples only, shaped
    # (B, window, sample, F), so that the pooling's gradient reaches it without a copy.
    h = act(h[:, : n_win * pool].view(n_batch, n_win, pool, n_filters))
    h = h.sum(2) / pool  # (B, n_win, F)
    return drop(h.transpose(1, 2).reshape(n_batch, n_filters * n_win))


def _channels_last(h: Tensor, along_height: bool) -> Tensor:
    """``(B, T, F)`` contiguous as a channels-last ``(B, F, T, 1)`` (``along_height``) or
    ``(B, F, 1, T)`` image, without a copy and with the canonical channels-last strides (oneDNN
    mis-handles some equivalent strides of the size-1 axis)."""
    b, t, f = h.shape
    if along_height:
        return h.as_strided((b, f, t, 1), (t * f, 1, f, f))
    return h.as_strided((b, f, 1, t), (t * f, 1, t * f, f))


class DepthwiseTimeConv(torch.autograd.Function):
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


# ---------------------------------------------------------------------------- Transformer branch
class _Map(NamedTuple):
    perm: Tensor  # (C,) long
    sign: Tensor  # (C,) float
    kind: str  # "perm" (all signs +1), "flip" (identity, all -1) or "signed"


def checked_maps(
    x: Tensor, channel_maps: Sequence[ChannelMap | None] | None
) -> list[_Map | None] | None:
    """Channel maps checked against the chunks of a stacked batch, ready for :func:`encode`.

    Parameters
    ----------
    x : Tensor, shape (B, C, T)
        ``cat([raw, view_1, ..., view_V])``, ``V = len(channel_maps)`` equal chunks.
    channel_maps : sequence of ``(perm, sign)`` or None
        See ``MVCNet.forward``.

    Returns
    -------
    list of _Map or None, or None
        One entry per view (``None`` for a view that is not a channel map); ``None`` when there
        is nothing to share (no maps, or ``x`` needs its own gradient).

    Raises
    ------
    ValueError
        When the chunks are not equal, a map has the wrong length, or a chunk is not its map of
        the raw chunk.
    """
    if not channel_maps or all(m is None for m in channel_maps) or x.requires_grad:
        return None
    n_chunks = 1 + len(channel_maps)
    if x.shape[0] % n_chunks:
        raise ValueError(f"{x.shape[0]} trials do not split into {n_chunks} equal chunks")
    chunks = x.unflatten(0, (n_chunks, -1))
    out: list[_Map | None] = []
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


def encode(
    encoder: nn.TransformerEncoder, h: Tensor, maps: list[_Map | None] | None = None
) -> Tensor:
    """``encoder(h)`` for MVCNet's encoder (post-norm, ReLU, batch-first layers, no masks).

    Parameters
    ----------
    encoder : nn.TransformerEncoder
        ``MVCNet.encoder``.
    h : Tensor, shape (B, L, E)
        Channel tokens.
    maps : list or None
        :func:`checked_maps` of the batch: the first layer shares the views' input projection.

    Returns
    -------
    Tensor, shape (B, L, E)
    """
    for layer in encoder.layers:
        h = post_norm_layer(layer, h, maps)
        maps = None  # only the first layer's input is a linear function of the trials
    if encoder.norm is not None:
        h = encoder.norm(h)
    return h


class SharedInProjection(torch.autograd.Function):
    """``F.linear(x, weight, bias)`` of stacked chunks ``x = cat([raw, view_1, ...])`` where
    some views are signed channel (token) permutations of ``raw`` (``maps``, see
    :func:`checked_maps`): their rows are gathered from the raw chunk's output, and their
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
        # the signs in the activations' dtype (bfloat16 under autocast) for the backward
        maps = [m if m is None else m._replace(sign=m.sign.to(x.dtype)) for m in maps]
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


def post_norm_layer(
    layer: nn.TransformerEncoderLayer,
    x: Tensor,
    maps: list[_Map | None] | None = None,
) -> Tensor:
    """``layer(x)`` for our post-norm, ReLU, batch-first encoder layer, computed batch-first.

    The same function and parameters as ``nn.TransformerEncoderLayer.forward`` (no masks):
    ``x = norm1(x + drop1(attn(x)))``, ``x = norm2(x + drop2(linear2(drop(relu(linear1(x))))))``.
    ``nn.MultiheadAttention`` transposes its batch-first input to sequence-first and back
    (copies of every activation); here the packed input projection goes to
    :class:`PackedAttention` (CPU) or :func:`sdpa_attention` as it is, and with ``maps`` (first
    layer of a stacked multi-view batch) it is :class:`SharedInProjection`. The layer must be
    post-norm with ReLU, as ``MVCNet`` builds it.

    Parameters
    ----------
    layer : nn.TransformerEncoderLayer
    x : Tensor, shape (B, L, E)
    maps : list or None
        :func:`checked_maps` of the batch ``x``.

    Returns
    -------
    Tensor, shape (B, L, E)
    """
    attn = layer.self_attn
    heads = attn.num_heads
    p_drop = attn.dropout if layer.training else 0.0
    if maps is None or attn.in_proj_bias is None:
        qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)  # (B, L, 3 * width)
    else:
        qkv = autocast_apply(SharedInProjection, x, attn.in_proj_weight, attn.in_proj_bias, maps)
    if x.device.type == "cpu":
        a = autocast_apply(PackedAttention, qkv, heads, p_drop)
    else:
        a = sdpa_attention(qkv, heads, p_drop)
    a = attn.out_proj(a)
    x = layer.norm1(x + layer.dropout1(a))
    ff = layer.linear2(layer.dropout(F.relu(layer.linear1(x))))
    return layer.norm2(x + layer.dropout2(ff))


def sdpa_attention(qkv: Tensor, heads: int, p: float) -> Tensor:
    """:class:`PackedAttention` by ``scaled_dot_product_attention`` (fused kernels on GPUs).

    Parameters
    ----------
    qkv : Tensor, shape (B, L, 3 * E)
    heads : int
    p : float
        Dropout on the attention weights.

    Returns
    -------
    Tensor, shape (B, L, E)
    """
    n_batch, n_tok, width3 = qkv.shape
    q, k, v = qkv.view(n_batch, n_tok, 3, heads, width3 // (3 * heads)).permute(2, 0, 3, 1, 4)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
    return a.transpose(1, 2).reshape(n_batch, n_tok, width3 // 3)


class PackedAttention(torch.autograd.Function):
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

"""Speed kernels of DB-SAM's decoder path, kept apart from the architecture.

Everything here computes exactly what segment-anything's own ``MaskDecoder`` computes for one
mask per prompt (``multimask_output=False``), only faster on the CPU; the models in
:mod:`medcl.dbsam.model` call it when built with ``fast=True`` (the default) and call
segment-anything's ``MaskDecoder`` unchanged with ``fast=False``. The equivalence of the two
paths (values and gradients) is tested in ``tests/apps/dbsam/test_kernels.py``, so a torch or
segment-anything upgrade that breaks a kernel shows there, and ``fast=False`` keeps the model
usable meanwhile.

What is faster than SAM's ``MaskDecoder.forward`` (Kirillov et al., 2023):

* **one pass for B (embedding, prompt) pairs.** SAM repeats each image embedding once per
  prompt (many prompts on one image); DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172) pairs
  the B embeddings of a batch with B prompts, which SAM's decoder can only do one pair at a time;
* **channels-last memory** for the transformer's image tokens, so its flatten-and-permute is a
  view and its per-token operations read contiguous memory (about 15 % of decode time);
* **one mask hypernetwork.** Only the first mask token's hypernetwork is evaluated, SAM's
  single-mask output; the three multi-mask ones and the IoU head are skipped;
* **upscaling as matmuls** (:func:`upscale_tokens`): each kernel-2 stride-2 transposed
  convolution is a per-token linear map and a reshuffle of the channels-last tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from segment_anything.modeling import MaskDecoder
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

__all__ = ["decode_pairs", "deconv2x2", "upscale_tokens"]


def deconv2x2(x: Tensor, conv: nn.ConvTranspose2d, h: int, w: int) -> Tensor:
    """A kernel-2 stride-2 transposed convolution of channels-last tokens, as one matmul.

    Each input pixel writes its own 2 x 2 output block, so the layer is a per-token linear map
    C -> 4 C' and a reshuffle; on the CPU this is several times faster than ConvTranspose2d
    on the token layout the decoder's transformer returns.

    Parameters
    ----------
    x : Tensor
        (B, h * w, C) tokens, row-major.
    conv : torch.nn.ConvTranspose2d
        Kernel 2, stride 2, no padding; its weight (C, C', 2, 2) and bias (C',) are used.
    h, w : int
        The token grid of ``x``.

    Returns
    -------
    Tensor
        (B, 2h * 2w, C') tokens, row-major.
    """
    b, c_out = x.shape[0], conv.out_channels
    y = x @ conv.weight.reshape(x.shape[-1], c_out * 4).to(x.dtype)
    y = y.view(b, h, w, c_out, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(b, 4 * h * w, c_out)
    return y + conv.bias.to(y.dtype)


def _is_deconv2x2(module: nn.Module) -> bool:
    return (isinstance(module, nn.ConvTranspose2d) and tuple(module.kernel_size) == (2, 2)
            and tuple(module.stride) == (2, 2) and tuple(module.padding) == (0, 0)
            and tuple(module.output_padding) == (0, 0) and tuple(module.dilation) == (1, 1)
            and module.groups == 1 and module.bias is not None)


def upscale_tokens(upscaling: nn.Sequential, src: Tensor, g: int) -> Tensor:
    """SAM's ``output_upscaling`` on channels-last tokens, with SAM's own parameters.

    SAM's upscaling is deconv, LayerNorm2d, activation, deconv, activation; here each deconv
    is :func:`deconv2x2` and the LayerNorm2d a LayerNorm over the last (channel) axis. A
    sequence of another shape (a changed segment-anything) is run as the modules it holds.

    Parameters
    ----------
    upscaling : torch.nn.Sequential
        ``MaskDecoder.output_upscaling``.
    src : Tensor
        (B, g * g, C) image tokens from the decoder's transformer, row-major.
    g : int
        Side of the token grid.

    Returns
    -------
    Tensor
        (B, 4g * 4g, C/8) upscaled tokens, row-major.
    """
    layers = list(upscaling)
    if (len(layers) != 5 or not all(_is_deconv2x2(m) for m in (layers[0], layers[3]))
            or not isinstance(layers[1], LayerNorm2d)):
        b = src.shape[0]
        out = upscaling(src.transpose(1, 2).reshape(b, -1, g, g))
        return out.flatten(2).transpose(1, 2)
    deconv1, norm, act1, deconv2, act2 = layers
    y = deconv2x2(src, deconv1, g, g)
    y = F.layer_norm(y, (y.shape[-1],), norm.weight.to(y.dtype), norm.bias.to(y.dtype), norm.eps)
    return act2(deconv2x2(act1(y), deconv2, 2 * g, 2 * g))


def decode_pairs(decoder: MaskDecoder, embeddings: Tensor, image_pe: Tensor, sparse: Tensor,
                 dense: Tensor) -> Tensor:
    """SAM's single-mask decoding of B (embedding, prompt) pairs in one batched pass.

    Equal to ``decoder(embeddings[i:i+1], image_pe, sparse[i:i+1], dense[i:i+1],
    multimask_output=False)[0]`` for every i, stacked (see the module docstring for what
    differs in the computation, not in the result).

    Parameters
    ----------
    decoder : segment_anything.modeling.MaskDecoder
        Its modules and parameters are used.
    embeddings : Tensor
        (B, C, g, g) image embeddings.
    image_pe : Tensor
        (1, C, g, g) dense positional encoding (``PromptEncoder.get_dense_pe()``).
    sparse : Tensor
        (B, T, C) sparse prompt embeddings, one row per pair.
    dense : Tensor
        (B, C, g, g) dense prompt embeddings, one per pair.

    Returns
    -------
    Tensor
        (B, 1, 4g, 4g) low-resolution mask logits.
    """
    b, _, g, _ = embeddings.shape
    # The transformer attends over all output tokens, so the unused ones stay in.
    tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
    tokens = torch.cat([tokens.unsqueeze(0).expand(b, -1, -1), sparse.to(tokens.dtype)], dim=1)
    src = (embeddings + dense).contiguous(memory_format=torch.channels_last)
    pos = image_pe.expand(b, -1, -1, -1).contiguous(memory_format=torch.channels_last)
    hs, src = decoder.transformer(src, pos, tokens)
    hyper = decoder.output_hypernetworks_mlps[0](hs[:, 1])
    upscaled = upscale_tokens(decoder.output_upscaling, src, g)  # (B, 4g * 4g, C/8)
    masks = torch.bmm(upscaled, hyper.unsqueeze(2).to(upscaled.dtype))
    return masks.view(b, 1, 4 * g, 4 * g)

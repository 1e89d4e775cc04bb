"""Tests for dbsam._kernels: the fast decoder path equals segment-anything's own MaskDecoder.

Each kernel is checked against the torch module it replaces, and each model (DB-SAM, Qin et
al., MICCAI 2024, arXiv:2410.04172, and vanilla SAM) against itself with ``fast=False``, which
calls segment-anything's ``MaskDecoder`` unchanged: the same weights and inputs give the same
mask logits and the same gradients of every trainable parameter, to float32 tolerances.
"""

from __future__ import annotations

import copy

import pytest
import torch
from segment_anything.modeling import MaskDecoder
from segment_anything.modeling.common import LayerNorm2d
from torch import nn

from medcl.dbsam._kernels import decode_pairs, deconv2x2, upscale_tokens
from medcl.dbsam.model import DBSAM, VanillaSAM, build_model, build_sam

SIZE = 128  # tiny encoder, an 8 x 8 token grid and 32 x 32 masks
BOXES = torch.tensor([[10.0, 15.0, 70.0, 100.0], [50.0, 30.0, 125.0, 60.0],
                      [0.0, 0.0, 127.0, 127.0]])
VALUES = {"rtol": 1e-4, "atol": 1e-5}
GRADS = {"rtol": 1e-4, "atol": 1e-6}  # of a single layer's gradients
GRAD_ATOL = 1e-5
"""Absolute gradient tolerance as a fraction of the largest gradient entry of the model: the
gradients of a summed loss reach ~10^2, and some are zero in exact arithmetic (the key biases of
softmax attention) and hold only float32 rounding, ~10^-6 of that scale on either path."""


@pytest.fixture(scope="module")
def tiny_sam():
    torch.manual_seed(0)
    return build_sam("tiny", SIZE)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


@pytest.fixture(scope="module")
def mask_prompt() -> torch.Tensor:
    return torch.randn(3, 1, SIZE // 4, SIZE // 4, generator=torch.Generator().manual_seed(2))


def _perturb(model: nn.Module) -> None:
    """Give every parameter a random offset: the zero-initialised added paths of DB-SAM act,
    and no gradient is zero by construction."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))


def _models(tiny_sam, kind: str) -> nn.Module:
    sam = copy.deepcopy(tiny_sam)
    model = DBSAM(sam) if kind == "dbsam" else VanillaSAM(sam)
    _perturb(model)
    return model.eval()  # eval: BatchNorm uses its running statistics on both passes


def _run(model: nn.Module, fast: bool, images, boxes, mask_prompt):
    """Mask logits and the gradients of every trainable parameter for one path."""
    model.fast = fast
    model.zero_grad(set_to_none=True)
    logits = model(images, boxes, mask_prompt)
    # a loss that weighs every pixel differently, so permuted pixels would not cancel out
    weights = torch.linspace(-1.0, 2.0, logits.numel()).view_as(logits)
    (logits.sigmoid() * weights).sum().backward()
    # a parameter the prompt does not use (e.g. the mask downscaling for boxes) has no grad
    grads = {name: None if p.grad is None else p.grad.clone()
             for name, p in model.named_parameters() if p.requires_grad}
    return logits.detach(), grads


def test_deconv2x2_is_the_transposed_convolution():
    torch.manual_seed(4)
    conv = nn.ConvTranspose2d(16, 6, kernel_size=2, stride=2)
    grid = torch.randn(2, 16, 5, 7, requires_grad=True)
    tokens = grid.detach().permute(0, 2, 3, 1).reshape(2, 35, 16).requires_grad_(True)
    reference = conv(grid)  # (2, 6, 10, 14)
    ours = deconv2x2(tokens, conv, 5, 7)  # (2, 140, 6), row-major
    torch.testing.assert_close(ours, reference.flatten(2).transpose(1, 2), **VALUES)
    weights = torch.randn(reference.shape)
    grad_ref = torch.autograd.grad((reference * weights).sum(), [grid, conv.weight, conv.bias])
    grad_ours = torch.autograd.grad((ours * weights.flatten(2).transpose(1, 2)).sum(),
                                    [tokens, conv.weight, conv.bias])
    torch.testing.assert_close(grad_ours[0], grad_ref[0].permute(0, 2, 3, 1).reshape(2, 35, 16),
                               **GRADS)
    for a, b in zip(grad_ours[1:], grad_ref[1:], strict=True):
        torch.testing.assert_close(a, b, **GRADS)


@pytest.mark.parametrize("standard", [True, False])
def test_upscale_tokens_is_sams_output_upscaling(standard):
    torch.manual_seed(5)
    if standard:  # SAM's own: deconv, LayerNorm2d, GELU, deconv, GELU
        upscaling = nn.Sequential(nn.ConvTranspose2d(32, 8, 2, stride=2), LayerNorm2d(8),
                                  nn.GELU(), nn.ConvTranspose2d(8, 4, 2, stride=2), nn.GELU())
        with torch.no_grad():
            upscaling[1].weight.uniform_(0.5, 1.5)
            upscaling[1].bias.normal_()
    else:  # another shape runs as the modules it holds
        upscaling = nn.Sequential(nn.Upsample(scale_factor=4), nn.Conv2d(32, 4, 1))
    g = 4
    grid = torch.randn(2, 32, g, g)
    tokens = grid.permute(0, 2, 3, 1).reshape(2, g * g, 32)
    out = upscale_tokens(upscaling, tokens, g)
    assert out.shape == (2, 16 * g * g, 4)
    torch.testing.assert_close(out, upscaling(grid).flatten(2).transpose(1, 2), **VALUES)


def test_decode_pairs_is_sams_mask_decoder_pair_by_pair(tiny_sam, mask_prompt):
    sam = copy.deepcopy(tiny_sam)
    _perturb(sam)
    emb = torch.randn(3, 256, 8, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        sparse, dense = sam.prompt_encoder(None, BOXES, mask_prompt)
        pe = sam.prompt_encoder.get_dense_pe()
        ours = decode_pairs(sam.mask_decoder, emb, pe, sparse, dense)
        for i in range(3):
            reference, _ = sam.mask_decoder(emb[i:i + 1], pe, sparse[i:i + 1], dense[i:i + 1],
                                            multimask_output=False)
            torch.testing.assert_close(ours[i:i + 1], reference, **VALUES)


@pytest.mark.parametrize("kind", ["dbsam", "sam"])
@pytest.mark.parametrize("prompt", ["box", "box+mask", "none"])  # every prompt-encoder path
def test_fast_and_plain_paths_agree(tiny_sam, images, mask_prompt, kind, prompt):
    model = _models(tiny_sam, kind)
    boxes = BOXES if "box" in prompt else None
    masks = mask_prompt if "mask" in prompt else None
    fast_logits, fast_grads = _run(model, True, images, boxes, masks)
    plain_logits, plain_grads = _run(model, False, images, boxes, masks)
    assert fast_logits.shape == (3, 1, SIZE // 4, SIZE // 4)
    torch.testing.assert_close(fast_logits, plain_logits, **VALUES)
    assert fast_grads.keys() == plain_grads.keys()
    scale = max(float(g.abs().max()) for g in plain_grads.values() if g is not None)
    touched = 0
    for name, grad in plain_grads.items():
        assert (fast_grads[name] is None) == (grad is None), name
        if grad is not None:
            torch.testing.assert_close(fast_grads[name], grad, rtol=1e-4,
                                       atol=GRAD_ATOL * scale,
                                       msg=lambda text, name=name: f"{name}: {text}")
            touched += bool(grad.abs().sum() > 0)
    assert touched > len(plain_grads) // 2  # the comparison is not of zeros
    if prompt != "none":  # the prompts reach the logits on both paths
        assert not torch.allclose(fast_logits[0], fast_logits[1])


def test_the_switch_chooses_the_decoder(tiny_sam, images, monkeypatch):
    calls = []
    original = MaskDecoder.forward

    def spy(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MaskDecoder, "forward", spy)
    plain = build_model("sam", "tiny", SIZE, fast=False)
    assert plain.fast is False and DBSAM(copy.deepcopy(tiny_sam)).fast is True
    with torch.no_grad():
        emb = plain.embed(images)
        plain.decode(emb, BOXES)
        assert len(calls) == 3  # SAM's decoder, once per (embedding, prompt) pair
        plain.fast = True
        plain.decode(emb, BOXES)
        assert len(calls) == 3  # the kernels, not SAM's forward
    # the switch is not part of the weights: one state dict serves both paths
    fast = build_model("sam", "tiny", SIZE)
    assert fast.state_dict().keys() == plain.state_dict().keys()

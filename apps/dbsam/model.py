"""The DB-SAM network and the vanilla SAM baseline, on segment-anything's own modules.

Paper: Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation",
MICCAI 2024, arXiv:2410.04172.

DB-SAM keeps SAM's ViT image encoder frozen and adds, around it,

* a learnable **channel-attention block** after every transformer block (ViT branch);
* a **convolution branch**, an image pyramid: the slice at 1/2, 1/4, 1/8 and 1/16 of its
  side, each through its own small convolution stack onto the ViT token grid;
* **bilateral cross-attention** at four stages (after the global-attention blocks):
  multi-scale deformable attention over the joint set of ViT tokens and convolution levels, so
  ViT tokens read the convolution levels and the levels read the ViT tokens, at full
  resolution;
* a **ViT-convolution fusion block**, a per-channel softmax over the levels and the ViT
  tokens, whose output feeds SAM's neck;

and decodes with SAM's prompt encoder and mask decoder (box and mask prompts, one mask per
prompt). :class:`VanillaSAM` is SAM as is, the baseline with the same interface.

The models hold the architecture only. Decoding has two paths with the same result: ``fast=True``
(the default) runs the batched CPU kernels of :mod:`medcl.dbsam._kernels`, ``fast=False`` calls
segment-anything's own ``MaskDecoder`` unchanged, one (embedding, prompt) pair at a time.

Every addition is initialised so that an untrained :class:`DBSAM` computes *exactly* SAM's image
embedding: the channel-attention blocks' last projection, the ViT-side scales of the
cross-attention's two updates, and the fusion's residual scale all start at zero. Training therefore
starts from the pretrained SAM rather than from a perturbed one.

Nothing here needs custom CUDA; it runs on CPU and CUDA, under ``torch.autocast`` too.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from pathlib import Path

import torch
from segment_anything.modeling import Sam
from torch import Tensor, nn

from medcl.io.errors import ConfigError

from ._kernels import decode_pairs
from .blocks import BilateralCrossAttention, ChannelAttentionBlock, ConvBranch, ViTConvFusion
from .sam import (
    ARCHS,
    PATCH_SIZE,
    PIXEL_MEAN,
    PIXEL_STD,
    PROMPT_DIM,
    arch_of,
    build_sam,
    load_sam_checkpoint,
)

__all__ = [
    "ARCHS",
    "DBSAM",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "PromptableSegmenter",
    "VanillaSAM",
    "build_model",
    "build_sam",
    "load_sam_checkpoint",
    "make_dbsam",
    "parameter_counts",
]


# --------------------------------------------------------------------------------------------
# Common interface
# --------------------------------------------------------------------------------------------


class PromptableSegmenter(nn.Module, ABC):
    """A box- and mask-promptable segmenter: an image encoder, SAM's prompt encoder and decoder.

    The image is encoded once (:meth:`embed`) and the embedding re-prompted cheaply
    (:meth:`decode`), as in SAM and DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172).
    Prompts are boxes and masks, one mask is predicted per prompt (SAM's
    ``multimask_output=False``): the point-label embeddings of the prompt encoder and the IoU
    head and three extra hypernetworks of the decoder are unused, and frozen so that the
    parameter counts, optimisers and DDP see only what is trained.

    The modules of ``sam`` are adopted under SAM's own names (``image_encoder``,
    ``prompt_encoder``, ``mask_decoder``), so the SAM part of :meth:`state_dict` reads as a SAM
    checkpoint.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`; its modules are shared, not copied.
    fast : bool
        Decode with the batched kernels of :mod:`medcl.dbsam._kernels` (default) rather than
        with segment-anything's own ``MaskDecoder.forward``, called once per pair. Both give
        the same masks and gradients; the switch is an attribute and may be changed at any time.

    Attributes
    ----------
    image_size : int
        Side S of the square, pixel-normalised input.
    arch : str
        The encoder size (a key of :data:`ARCHS`, ``"litemedsam"`` or ``"custom"``).
    grid : int
        Side of the image embedding: S/16 (SAM's ViT), S/4 (LiteMedSAM's TinyViT).
    style : str
        The input pipeline the encoder expects (:data:`medcl.dbsam.preprocess.STYLES`):
        ``"sam"`` (pixel mean/std) or ``"litemedsam"`` (min-max to [0, 1]).
    fast : bool
        The decoding path (see ``fast`` above).
    """

    image_size: int
    arch: str
    fast: bool

    def __init__(self, sam: Sam, *, fast: bool = True) -> None:
        super().__init__()
        self.fast = bool(fast)
        self.image_encoder = sam.image_encoder
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        self.image_size = int(sam.image_encoder.img_size)
        self.arch = arch_of(sam)
        self.style = "litemedsam" if self.arch == "litemedsam" else "sam"
        self.grid = self.image_size // int(getattr(sam.image_encoder, "stride", PATCH_SIZE))
        if tuple(self.prompt_encoder.image_embedding_size) != (self.grid, self.grid):
            raise ValueError("the prompt encoder's embedding size does not match the encoder")
        # Set every flag here: the modules of one Sam may be shared by several wrappers.
        self.prompt_encoder.requires_grad_(True)
        self.mask_decoder.requires_grad_(True)
        for module in (self.mask_decoder.iou_prediction_head,
                       *self.mask_decoder.output_hypernetworks_mlps[1:],
                       *self.prompt_encoder.point_embeddings[:2],
                       self.prompt_encoder.not_a_point_embed):
            module.requires_grad_(False)

    def _check_images(self, images: Tensor) -> None:
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(f"expected images (B, 3, {self.image_size}, {self.image_size}), "
                             f"got {tuple(images.shape)}")

    @abstractmethod
    def embed(self, images: Tensor) -> Tensor:
        """Encode images.

        Parameters
        ----------
        images : Tensor
            (B, 3, S, S), already normalised with :data:`PIXEL_MEAN` and :data:`PIXEL_STD`.

        Returns
        -------
        Tensor
            The image embedding, (B, 256, g, g), g = :attr:`grid`.
        """

    def decode(self, embeddings: Tensor, boxes: Tensor | None = None,
               mask_prompt: Tensor | None = None) -> Tensor:
        """Predict one mask per batch element from its embedding and its own prompt.

        SAM's ``MaskDecoder.forward`` repeats each image embedding once per prompt, which is
        meant for many prompts on one image; here each of the B embeddings is paired with the
        prompt of the same index: in one batched pass through the decoder's modules
        (``fast=True``, :func:`medcl.dbsam._kernels.decode_pairs`) or by calling SAM's
        ``MaskDecoder`` with ``multimask_output=False`` once per pair (``fast=False``).

        Parameters
        ----------
        embeddings : Tensor
            (B, 256, S/16, S/16) from :meth:`embed`.
        boxes : Tensor, optional
            (B, 4) boxes ``x0, y0, x1, y1`` in input pixels (0..S).
        mask_prompt : Tensor, optional
            (B, 1, S/4, S/4) mask logits, e.g. a previous prediction.

        Returns
        -------
        Tensor
            Low-resolution mask logits, (B, 1, S/4, S/4).
        """
        sparse, dense = self._prompt_embeddings(embeddings, boxes, mask_prompt)
        pe = self.prompt_encoder.get_dense_pe()
        if self.fast:
            return decode_pairs(self.mask_decoder, embeddings, pe, sparse, dense)
        masks = [self.mask_decoder(image_embeddings=embeddings[i:i + 1], image_pe=pe,
                                   sparse_prompt_embeddings=sparse[i:i + 1],
                                   dense_prompt_embeddings=dense[i:i + 1],
                                   multimask_output=False)[0]
                 for i in range(embeddings.shape[0])]
        return torch.cat(masks)

    def _prompt_embeddings(self, embeddings: Tensor, boxes: Tensor | None,
                           mask_prompt: Tensor | None) -> tuple[Tensor, Tensor]:
        """Check the decoder's inputs and run SAM's prompt encoder on them.

        Returns
        -------
        tuple of Tensor
            Sparse (B, T, 256) and dense (B, 256, S/16, S/16) prompt embeddings, one per batch
            element (also without any prompt, where SAM's encoder returns a batch of one).
        """
        b = embeddings.shape[0]
        g = self.grid
        if tuple(embeddings.shape[1:]) != (PROMPT_DIM, g, g):
            raise ValueError(f"expected embeddings (B, {PROMPT_DIM}, {g}, {g}), "
                             f"got {tuple(embeddings.shape)}")
        if boxes is not None:
            if tuple(boxes.shape) != (b, 4):
                raise ValueError(f"expected boxes ({b}, 4), got {tuple(boxes.shape)}")
            boxes = boxes.to(device=embeddings.device, dtype=torch.float32)
        if mask_prompt is not None and tuple(mask_prompt.shape) != (b, 1, 4 * g, 4 * g):
            raise ValueError(f"expected mask_prompt ({b}, 1, {4 * g}, {4 * g}), "
                             f"got {tuple(mask_prompt.shape)}")
        sparse, dense = self.prompt_encoder(points=None, boxes=boxes, masks=mask_prompt)
        if sparse.shape[0] != b:  # no prompt at all: the encoder returns batch 1
            sparse = sparse.expand(b, -1, -1)
            dense = dense.expand(b, -1, -1, -1)
        return sparse, dense

    def forward(self, images: Tensor, boxes: Tensor | None = None,
                mask_prompt: Tensor | None = None) -> Tensor:
        """``decode(embed(images), boxes, mask_prompt)``: (B, 1, S/4, S/4) mask logits."""
        return self.decode(self.embed(images), boxes, mask_prompt)


class VanillaSAM(PromptableSegmenter):
    """Segment Anything as is: the baseline of DB-SAM (Qin et al., MICCAI 2024,
    arXiv:2410.04172).

    The whole image encoder, neck included, is frozen; fine-tuning trains the prompt encoder
    and the mask decoder. While the encoder is frozen it runs without autograd.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`.
    fast : bool
        The decoding path, see :class:`PromptableSegmenter`.
    """

    def __init__(self, sam: Sam, *, fast: bool = True) -> None:
        super().__init__(sam, fast=fast)
        self.image_encoder.requires_grad_(False)

    def embed(self, images: Tensor) -> Tensor:
        """SAM's image embedding, (B, 256, S/16, S/16), of normalised (B, 3, S, S) images."""
        self._check_images(images)
        needs_grad = images.requires_grad or any(
            p.requires_grad for p in self.image_encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and needs_grad):
            return self.image_encoder(images)


class DBSAM(PromptableSegmenter):
    """DB-SAM: dual-branch adapted Segment Anything (Qin et al., MICCAI 2024,
    arXiv:2410.04172).

    ``embed``: patch embedding and position embedding of SAM's frozen ViT; after every frozen
    transformer block a trainable :class:`ChannelAttentionBlock`; in parallel a
    :class:`ConvBranch`, the image pyramid (the slice at 1/2, 1/4, 1/8 and 1/16 of its side,
    each through its own convolution stack onto the ViT token grid); after each
    global-attention block (four in ViT-B/L/H, two in ``tiny``) a
    :class:`BilateralCrossAttention`, multi-scale deformable attention over the joint set of
    ViT tokens and convolution levels; a per-channel :class:`ViTConvFusion` of all levels;
    SAM's neck. ``decode``: SAM's prompt encoder and mask decoder.

    Trainable: the added blocks, the neck, the prompt encoder and the mask decoder (less its
    unused single-mask parts, see :class:`PromptableSegmenter`). Frozen
    (``requires_grad=False``): SAM's patch embedding, position embedding and transformer blocks.

    Untrained, DB-SAM's image embedding equals SAM's exactly: every added path into the ViT
    tokens ends in a zero-initialised projection or scale (see the blocks' docstrings).

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`; its modules are adopted, not copied.
    num_points : int
        Sampling points per head and level of the deformable attention (4 in DB-SAM). Its
        heads are the ViT's (12 for ViT-B).
    ffn_ratio : float
        FFN hidden width of the interaction and fusion blocks, as a multiple of the ViT width
        (4 in DB-SAM). See ``benchmarks/bench_dbsam.py`` for what it costs.
    drop_path : float
        Stochastic-depth probability of the interaction and fusion updates (0.3 in DB-SAM).
    dropout : float
        Dropout of the deformable attention's output and inside its FFN (0.1 in DB-SAM).
    conv_widths : tuple of int, optional
        Widths of the three (3x3, 1x1) pairs of each pyramid stack; by default C/6, C/3 and
        2C/3 rounded up to multiples of 8 (128, 256, 512 for ViT-B as the authors; 32, 64,
        128 for ``tiny``).
    fast : bool
        The decoding path, see :class:`PromptableSegmenter`.
    """

    def __init__(self, sam: Sam, *, num_points: int = 4, ffn_ratio: float = 4.0,
                 drop_path: float = 0.3, dropout: float = 0.1,
                 conv_widths: tuple[int, ...] | None = None, fast: bool = True) -> None:
        super().__init__(sam, fast=fast)
        encoder = self.image_encoder
        dim = encoder.patch_embed.proj.out_channels
        if conv_widths is None:
            # C/6, C/3, 2C/3 in multiples of 8: the authors' 128-256-512 for ViT-B, and a
            # branch that stays in proportion for the narrower tiny and wider ViT-L/H encoders.
            conv_widths = tuple(8 * math.ceil(dim * f / 8) for f in (1 / 6, 1 / 3, 2 / 3))
        heads = encoder.blocks[0].attn.num_heads
        encoder.requires_grad_(True)
        encoder.patch_embed.requires_grad_(False)
        encoder.blocks.requires_grad_(False)
        if encoder.pos_embed is not None:
            encoder.pos_embed.requires_grad_(False)
        stages = [i for i, block in enumerate(encoder.blocks) if block.window_size == 0]
        self.stage_indexes: tuple[int, ...] = tuple(stages or [len(encoder.blocks) - 1])
        self.adapters = nn.ModuleList(ChannelAttentionBlock(dim) for _ in encoder.blocks)
        self.conv_branch = ConvBranch(dim, conv_widths)
        levels = 1 + self.conv_branch.levels
        self.cross_attn = nn.ModuleList(
            BilateralCrossAttention(dim, heads, num_levels=levels, num_points=num_points,
                                    ffn_ratio=ffn_ratio, drop_path=drop_path, dropout=dropout)
            for _ in self.stage_indexes)
        self.fusion = ViTConvFusion(dim, num_conv=self.conv_branch.levels, ffn_ratio=ffn_ratio,
                                    drop_path=drop_path)

    def embed(self, images: Tensor) -> Tensor:
        """DB-SAM's image embedding, (B, 256, S/16, S/16), of normalised (B, 3, S, S) images."""
        self._check_images(images)
        encoder = self.image_encoder
        x = encoder.patch_embed(images)
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        convs = self.conv_branch(images)
        stage = dict(zip(self.stage_indexes, self.cross_attn, strict=True))
        for i, (block, adapter) in enumerate(zip(encoder.blocks, self.adapters, strict=True)):
            x = adapter(block(x))
            if i in stage:
                x, convs = stage[i](x, convs)
        x = self.fusion(x, convs)
        return encoder.neck(x.permute(0, 3, 1, 2))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

MODEL_KINDS = {"dbsam": DBSAM, "sam": VanillaSAM}


def build_model(kind: str, arch: str = "tiny", image_size: int = 1024,
                checkpoint: str | Path | None = None, *,
                fast: bool = True) -> PromptableSegmenter:
    """Build DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172) or its vanilla SAM baseline.

    Parameters
    ----------
    kind : str
        ``"dbsam"`` (:class:`DBSAM` with its default settings) or ``"sam"``
        (:class:`VanillaSAM`).
    arch : str
        Encoder size, a key of :data:`ARCHS`.
    image_size : int
        Input side S, a multiple of 16.
    checkpoint : str or Path, optional
        A SAM state dict for the SAM part (see :func:`load_sam_checkpoint`).
    fast : bool
        The decoding path, see :class:`PromptableSegmenter`.

    Returns
    -------
    PromptableSegmenter

    Raises
    ------
    medcl.io.ConfigError, medcl.io.InputFileError
        As :func:`build_sam`; also for an unknown ``kind``.
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}",
                          fix=f"use one of {', '.join(MODEL_KINDS)}")
    sam = build_sam(arch, image_size, checkpoint)
    if kind == "dbsam":
        return make_dbsam(sam, fast=fast)
    return MODEL_KINDS[kind](sam, fast=fast)


def make_dbsam(sam: Sam, **kwargs) -> PromptableSegmenter:
    """DB-SAM around ``sam``: :class:`DBSAM` on a SAM ViT, :class:`medcl.dbsam.litemedsam.
    DBSAMLite` on LiteMedSAM's TinyViT; ``kwargs`` go to the class (``num_points``,
    ``ffn_ratio``, ``drop_path``, ``fast``, ...)."""
    if arch_of(sam) == "litemedsam":
        from .litemedsam import DBSAMLite

        return DBSAMLite(sam, **kwargs)
    return DBSAM(sam, **kwargs)


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Numbers of trainable (``requires_grad``) and frozen parameters, each tensor once.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    dict
        ``{"trainable": int, "frozen": int}``.
    """
    counts = {"trainable": 0, "frozen": 0}
    for param in model.parameters():  # parameters() yields a shared tensor once
        counts["trainable" if param.requires_grad else "frozen"] += param.numel()
    return counts

"""LiteMedSAM as a backbone of the DB-SAM app: building it, loading ``lite_medsam.pth``, and
DB-SAM on its hierarchical TinyViT encoder.

LiteMedSAM (Ma et al., "Segment anything in medical images", Nature Communications 2024; the
baseline of the CVPR 2024 challenge "Segment Anything in Medical Images on Laptop"; MedSAM
repository, branch ``LiteMedSAM``, Apache-2.0) is SAM's prompt encoder and two-way mask decoder
(Kirillov et al., ICCV 2023) on a TinyViT image encoder (:mod:`medcl.dbsam.tinyvit`) at a
256 x 256 input, distilled from MedSAM's ViT-B and fine-tuned on MedSAM's medical image-mask
pairs: 9.8 M parameters. Its embedding is 64 x 64 (stride 4, not SAM's 16), so the prompt
encoder works on a 64 x 64 grid for 256 x 256 boxes and the decoder returns 256 x 256 logits.

The prompt encoder and mask decoder are segment-anything's own modules; only the encoder is
written here.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, Sam, TwoWayTransformer
from torch import Tensor, nn

from medcl.io.errors import ConfigError, InputFileError

from .blocks import BilateralCrossAttention, ChannelAttentionBlock, ConvBranch, ViTConvFusion
from .model import PromptableSegmenter
from .sam import PROMPT_DIM, checkpoint_arch, key_difference, read_state_dict
from .tinyvit import LITEMEDSAM, TinyViTSAM, TinyViTSpec

__all__ = [
    "CHECKPOINT_URL",
    "IMAGE_SIZE",
    "DBSAMLite",
    "build_litemedsam",
    "load_litemedsam_checkpoint",
]

IMAGE_SIZE = 256
"""LiteMedSAM's input side; its checkpoint was trained at 256 x 256 only."""

CHECKPOINT_URL = "https://github.com/bowang-lab/MedSAM/tree/LiteMedSAM"
"""Where ``lite_medsam.pth`` is published (the README of that branch links the file)."""

_FIX = ("give LiteMedSAM's lite_medsam.pth (MedSAM repository, branch LiteMedSAM) or a state "
        "dict of the same model saved with torch.save")


def build_litemedsam(image_size: int = IMAGE_SIZE, checkpoint: str | Path | None = None, *,
                     spec: TinyViTSpec = LITEMEDSAM) -> Sam:
    """LiteMedSAM: TinyViT encoder, SAM's prompt encoder (64 x 64 grid for a 256² input) and
    two-way mask decoder (Ma et al., Nature Communications 2024; LiteMedSAM branch).

    Parameters
    ----------
    image_size : int
        Must be 256: the only size the checkpoint was trained at (the argument exists so that
        callers that pass a run's ``image_size`` get a clear error for another size).
    checkpoint : str or Path, optional
        ``lite_medsam.pth``, loaded with :func:`load_litemedsam_checkpoint` (``weights_only``,
        ``strict``). Without it the weights are random.
    spec : TinyViTSpec
        Encoder sizes; LiteMedSAM's by default (another spec, e.g. a smaller one for tests,
        takes ``image_size == spec.img_size`` and has no official checkpoint).

    Returns
    -------
    segment_anything.modeling.Sam
        With a :class:`medcl.dbsam.tinyvit.TinyViTSAM` as ``image_encoder``; its
        ``pixel_mean``/``pixel_std`` (0 and 1) are unused: the app feeds it min-max scaled
        inputs (:func:`medcl.dbsam.preprocess.slice_to_input`, ``style="litemedsam"``).

    Raises
    ------
    medcl.io.ConfigError
        Another ``image_size``, or a checkpoint of another architecture.
    medcl.io.InputFileError
        A missing, truncated or unsafe checkpoint file.
    """
    if image_size != spec.img_size:
        raise ConfigError(f"LiteMedSAM takes {spec.img_size} x {spec.img_size} inputs, not "
                          f"{image_size}", fix=f"drop --image-size or pass {spec.img_size}")
    encoder = TinyViTSAM(spec)
    side = spec.img_size
    grid = side // encoder.stride
    prompt_encoder = PromptEncoder(embed_dim=PROMPT_DIM, image_embedding_size=(grid, grid),
                                   input_image_size=(side, side), mask_in_chans=16)
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048,
                                      num_heads=8),
        transformer_dim=PROMPT_DIM, iou_head_depth=3, iou_head_hidden_dim=256)
    sam = Sam(encoder, prompt_encoder, mask_decoder, pixel_mean=[0.0, 0.0, 0.0],
              pixel_std=[1.0, 1.0, 1.0])
    if checkpoint is not None:
        load_litemedsam_checkpoint(sam, checkpoint)
    return sam


def load_litemedsam_checkpoint(sam: Sam, checkpoint: str | Path) -> None:
    """Load ``lite_medsam.pth`` into ``sam`` (from :func:`build_litemedsam`).

    Read with ``torch.load(..., weights_only=True)`` and loaded with ``strict=True``; all 435
    tensors (``image_encoder.*``, ``prompt_encoder.*``, ``mask_decoder.*``) must be there with
    their shapes.

    Raises
    ------
    medcl.io.ConfigError
        A SAM ViT checkpoint (the message names the missing and unexpected keys and the
        ``--arch`` that fits it).
    medcl.io.InputFileError
        Missing, truncated or unsafe file; not a state dict; keys or shapes that do not fit.
    """
    path = Path(checkpoint)
    state = read_state_dict(path, _FIX)
    target = sam.state_dict()
    arch = checkpoint_arch(state)
    if arch != "litemedsam":
        detail = key_difference(state, target)
        if arch is not None:
            raise ConfigError(f"this checkpoint is a SAM ViT ({arch}), not LiteMedSAM's TinyViT "
                              f"({detail})", path=path, fix=f"pass --arch {arch}")
        raise InputFileError(f"is not a LiteMedSAM state dict ({detail})", path=path, fix=_FIX)
    wrong = sorted(k for k in set(state) & set(target) if state[k].shape != target[k].shape)
    if set(state) != set(target) or wrong:
        detail = key_difference(state, target)
        if wrong:
            detail = "; ".join(filter(None, [detail, f"shape differs: {', '.join(wrong[:3])}"]))
        raise InputFileError(f"does not fit LiteMedSAM ({detail})", path=path,
                             fix="use the unmodified lite_medsam.pth")
    sam.load_state_dict(state, strict=True)


class DBSAMLite(PromptableSegmenter):
    """DB-SAM (Qin et al., MICCAI 2024, arXiv:2410.04172) on LiteMedSAM's hierarchical TinyViT.

    DB-SAM's pieces, fitted to TinyViT's four stages (256², 128², 64², 64² for a 256² input;
    see :mod:`medcl.dbsam.tinyvit`):

    * **ViT branch**: a trainable :class:`~medcl.dbsam.blocks.ChannelAttentionBlock` after
      every frozen TinyViT attention block of stages 2 and 3 (6 + 2 = 8 adapters; with
      ``adapter_stages=(1, 2, 3)`` stage 1's two blocks too, the paper's every-block
      placement). Stage 0 gets none: it is convolutional already (MBConv), there is no
      transformer block to adapt. Stage 1 (128²) gets none by default: its two adapters cost
      as much as stage 2's six (four times the tokens), about 4 % of a slice, which the 1.3x
      budget does not leave.
    * **Convolution branch**: DB-SAM's image pyramid (:class:`~medcl.dbsam.blocks.ConvBranch`)
      with ``out_stride=4``, so that its levels lie on TinyViT's 64 x 64 embedding grid: the
      slice at 1/2 and 1/4 of its side (two levels; a 1/8 or 1/16 level would be coarser than
      the grid and would need upsampling).
    * **Bilateral cross-attention** on the 64 x 64 embedding grid, i.e. with **stage 2** (by
      default) or stages 2 and 3 (``interaction_stages=(2, 3)``): only the stages after the
      last stride-2 merging share the grid of the convolution levels, so these are the stages
      that feed (and are fed by) the conv branch. They play the part of the ViT-B
      global-attention blocks in DB-SAM: the deepest features, at the embedding's
      resolution, that the neck reads. Stages 0-1 run at 256² and 128², where the joint token
      set would be 4-16 times larger and the levels would need upsampling. Stage 2 is the
      default because it is the deep stage (6 of the 12 blocks) and its width 160 (5 heads)
      makes the interaction cheap; one at stage 3 too (width 320, 10 heads) costs about as
      much as the whole encoder on a CPU. Where a frozen merging widens the tokens (160 ->
      320 into stage 3), each convolution level is lifted by a trainable linear map.
    * **Fusion** (:class:`~medcl.dbsam.blocks.ViTConvFusion`) of the stage-3 tokens and the
      two levels, then LiteMedSAM's neck (trainable, as SAM's neck in DB-SAM).

    The checkpoint's encoder (stem, MBConv stage, TinyViT blocks, patch mergings) stays frozen,
    as SAM's ViT in the paper. Untrained, the image embedding equals LiteMedSAM's exactly (every
    path into the ViT tokens starts at zero, see :mod:`medcl.dbsam.blocks`).

    Departures beyond the paper's ViT-B design, all for a laptop CPU budget (DB-SAM within
    1.3x of LiteMedSAM's time per slice, see ``benchmarks/bench_dbsam.py``): one interaction
    stage, not four; two pyramid levels, not four; FFNs of the interaction and fusion blocks
    of ratio 1, not 4 (``ffn_ratio``).

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_litemedsam`.
    num_points, drop_path, dropout : see :class:`medcl.dbsam.model.DBSAM`.
    ffn_ratio : float
        FFN width of the interaction and fusion blocks as a multiple of their width.
    interaction_stages : tuple of int
        TinyViT stages followed by a bilateral cross-attention; among those on the embedding
        grid, (2,) by default, (2, 3) for both.
    adapter_stages : tuple of int
        TinyViT attention stages (1-3) whose blocks each get a channel-attention adapter.
    levels : int
        Pyramid levels of the convolution branch, 1 or 2.
    conv_widths : tuple of int, optional
        Widths of each pyramid stack; by default C/6, C/3, 2C/3 of stage 2's width 160,
        rounded up to multiples of 8 (32, 56, 112).
    fast : bool
        The decoding path, see :class:`medcl.dbsam.model.PromptableSegmenter`.
    """

    def __init__(self, sam: Sam, *, num_points: int = 4, ffn_ratio: float = 1.0,
                 drop_path: float = 0.3, dropout: float = 0.1, levels: int = 2,
                 conv_widths: tuple[int, ...] | None = None,
                 interaction_stages: tuple[int, ...] = (2,),
                 adapter_stages: tuple[int, ...] = (2, 3), fast: bool = True) -> None:
        super().__init__(sam, fast=fast)
        encoder = self.image_encoder
        if not isinstance(encoder, TinyViTSAM):
            raise ValueError("DBSAMLite needs LiteMedSAM's TinyViT encoder (build_litemedsam)")
        spec = encoder.spec
        dims, heads = spec.embed_dims, spec.num_heads
        # only stages on the embedding grid can meet the conv levels: those after the last
        # stride-2 merging (2 and 3 in LiteMedSAM)
        last_down = max(i for i, s in enumerate(spec.merge_strides) if s == 2) + 1
        stages = tuple(sorted(set(interaction_stages)))
        if not stages or not all(last_down <= i < len(dims) for i in stages):
            allowed = tuple(range(last_down, len(dims)))
            raise ValueError(f"interaction_stages must be among {allowed}, got "
                             f"{interaction_stages}")
        self.stage_indexes: tuple[int, ...] = stages
        encoder.requires_grad_(True)
        encoder.patch_embed.requires_grad_(False)
        encoder.layers.requires_grad_(False)
        first = dims[self.stage_indexes[0]]
        if conv_widths is None:
            conv_widths = tuple(8 * math.ceil(first * f / 8) for f in (1 / 6, 1 / 3, 2 / 3))
        if not set(adapter_stages) <= set(range(1, len(dims))):
            raise ValueError(f"adapter_stages must be among 1..{len(dims) - 1}, got "
                             f"{adapter_stages}")
        self.adapters = nn.ModuleDict({
            str(i): nn.ModuleList(ChannelAttentionBlock(dims[i]) for _ in encoder.layers[i].blocks)
            for i in sorted(set(adapter_stages))})
        self.conv_branch = ConvBranch(first, conv_widths, levels=levels,
                                      out_stride=encoder.stride)
        self.cross_attn = nn.ModuleDict({
            str(i): BilateralCrossAttention(dims[i], heads[i], num_levels=1 + levels,
                                            num_points=num_points, ffn_ratio=ffn_ratio,
                                            drop_path=drop_path, dropout=dropout)
            for i in self.stage_indexes})
        # conv levels follow the ViT tokens' width: lifted where a frozen merging widens them
        # after an interaction (160 -> 320 into stage 3), before the next one or the fusion
        self.lift = nn.ModuleDict({
            str(i): nn.Linear(first, dims[i]) for i in range(stages[0] + 1, len(dims))
            if dims[i] != dims[i - 1]})
        self.fusion = ViTConvFusion(dims[-1], num_conv=levels, ffn_ratio=ffn_ratio,
                                    drop_path=drop_path)

    def embed(self, images: Tensor) -> Tensor:
        """DB-SAM's image embedding, (B, 256, S/4, S/4), of min-max scaled (B, 3, S, S)."""
        self._check_images(images)
        encoder = self.image_encoder
        x = encoder.layers[0](encoder.patch_embed(
            images.contiguous(memory_format=torch.channels_last)))
        convs = self.conv_branch(images)
        for i in range(1, len(encoder.layers)):
            stage = encoder.layers[i]
            adapters = self.adapters[str(i)] if str(i) in self.adapters else None
            for j, block in enumerate(stage.blocks):
                x = block(x) if adapters is None else adapters[j](block(x))
            if str(i) in self.lift:
                convs = [self.lift[str(i)](c) for c in convs]
            if str(i) in self.cross_attn:
                x, convs = self.cross_attn[str(i)](x, convs)
            x = stage.merge(x)
        x = self.fusion(x, convs)
        return encoder.neck(x.permute(0, 3, 1, 2))

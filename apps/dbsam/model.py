"""The DB-SAM network and the vanilla SAM baseline, on segment-anything's own modules.

Paper: Qin et al., "DB-SAM: Delving into High Quality Universal Medical Image Segmentation",
MICCAI 2024, arXiv:2410.04172.

DB-SAM keeps SAM's ViT image encoder frozen and adds, around it,

* a learnable **channel-attention block** after every transformer block (ViT branch);
* a light **convolution branch** on the image, producing features on the ViT token grid;
* **bilateral cross-attention** at four stages (after the global-attention blocks): ViT tokens
  attend to convolution features and convolution features attend to ViT tokens;
* a **ViT-convolution fusion block** whose output feeds SAM's neck;

and decodes with SAM's prompt encoder and mask decoder (box and mask prompts, one mask per
prompt). :class:`VanillaSAM` is SAM as is, the baseline with the same interface.

Every addition is initialised so that an untrained :class:`DBSAM` computes *exactly* SAM's image
embedding: the channel-attention blocks' last projection, the ViT-side output projection and FFN
of the cross-attention, and the fusion's residual scale all start at zero. Training therefore
starts from the pretrained SAM rather than from a perturbed one.

Nothing here needs custom CUDA; it runs on CPU and CUDA, under ``torch.autocast`` too.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)
from segment_anything.modeling.common import LayerNorm2d
from torch import Tensor, nn

from medio.errors import ConfigError, InputFileError

__all__ = [
    "ARCHS",
    "DBSAM",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "BilateralCrossAttention",
    "ChannelAttentionBlock",
    "ConvBranch",
    "PromptableSegmenter",
    "VanillaSAM",
    "ViTConvFusion",
    "arch_of",
    "build_model",
    "build_sam",
    "load_sam_checkpoint",
    "parameter_counts",
]

ARCHS: dict[str, dict] = {
    # Tests and CPU demos only; no checkpoint exists. Window 8 tiles the token grid of 256 (16 x
    # 16) and 1024 (64 x 64) without padding, where SAM's 14 would pad 16 x 16 to 28 x 28. Its
    # two global blocks end its two stages, so it has two cross-attention stages, not four.
    "tiny": {
        "embed_dim": 192,
        "depth": 4,
        "num_heads": 3,
        "global_attn_indexes": (1, 3),
        "window_size": 8,
    },
    "vit_b": {
        "embed_dim": 768,
        "depth": 12,
        "num_heads": 12,
        "global_attn_indexes": (2, 5, 8, 11),
        "window_size": 14,
    },
    "vit_l": {
        "embed_dim": 1024,
        "depth": 24,
        "num_heads": 16,
        "global_attn_indexes": (5, 11, 17, 23),
        "window_size": 14,
    },
    "vit_h": {
        "embed_dim": 1280,
        "depth": 32,
        "num_heads": 16,
        "global_attn_indexes": (7, 15, 23, 31),
        "window_size": 14,
    },
}
"""Image-encoder sizes: SAM's three (Kirillov et al., 2023) and a ``tiny`` one for tests."""

PIXEL_MEAN = (123.675, 116.28, 103.53)
"""SAM's per-channel mean of 0-255 RGB images."""
PIXEL_STD = (58.395, 57.12, 57.375)
"""SAM's per-channel standard deviation of 0-255 RGB images."""

PATCH_SIZE = 16
PROMPT_DIM = 256
_POS_EMBED = "image_encoder.pos_embed"
_PATCH_WEIGHT = "image_encoder.patch_embed.proj.weight"
_SAM_PREFIXES = ("image_encoder.", "prompt_encoder.", "mask_decoder.")


# --------------------------------------------------------------------------------------------
# SAM: building and checkpoints
# --------------------------------------------------------------------------------------------


def _arch_spec(arch: str) -> dict:
    if arch not in ARCHS:
        raise ConfigError(f"unknown encoder size {arch!r}",
                          fix=f"pass --arch one of {', '.join(ARCHS)}")
    return ARCHS[arch]


def _describe(arch: str) -> str:
    spec = ARCHS[arch]
    return f"{arch} (width {spec['embed_dim']}, {spec['depth']} blocks)"


def build_sam(arch: str, image_size: int = 1024, checkpoint: str | Path | None = None) -> Sam:
    """Build Segment Anything for square inputs of side ``image_size``.

    The modules are those of Kirillov et al. (2023) with the sizes used by DB-SAM (Qin et al.,
    MICCAI 2024, arXiv:2410.04172): the ViT encoder of ``arch`` with patch 16, relative position
    tables and a 256-channel neck; the prompt encoder; the two-way-transformer mask decoder.
    Unlike segment-anything's own builder, ``image_size`` may differ from 1024 (e.g. 256), and a
    checkpoint is read with ``weights_only=True``.

    Parameters
    ----------
    arch : str
        A key of :data:`ARCHS`: ``"tiny"``, ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``.
    image_size : int
        Side S of the (padded, square) input; a multiple of 16. The image embedding is
        S/16 x S/16.
    checkpoint : str or Path, optional
        A SAM state dict (e.g. ``sam_vit_b_01ec64.pth``), loaded with
        :func:`load_sam_checkpoint`. Without it the weights are random; the absolute position
        embedding then gets a truncated-normal start (std 0.02, as in ViT) instead of SAM's
        zeros, so that a frozen random encoder still carries position.

    Returns
    -------
    segment_anything.modeling.Sam

    Raises
    ------
    medio.ConfigError
        Unknown ``arch``, a bad ``image_size``, or a checkpoint of another encoder size.
    medio.InputFileError
        A missing, damaged or unsafe checkpoint file.
    """
    spec = _arch_spec(arch)
    if not isinstance(image_size, int) or image_size <= 0 or image_size % PATCH_SIZE:
        raise ConfigError(f"image size {image_size!r} is not a positive multiple of {PATCH_SIZE}",
                          fix="pass --image-size 256, 512 or 1024")
    grid = image_size // PATCH_SIZE
    encoder = ImageEncoderViT(
        img_size=image_size,
        patch_size=PATCH_SIZE,
        in_chans=3,
        embed_dim=spec["embed_dim"],
        depth=spec["depth"],
        num_heads=spec["num_heads"],
        mlp_ratio=4.0,
        out_chans=PROMPT_DIM,
        qkv_bias=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=spec["window_size"],
        global_attn_indexes=tuple(spec["global_attn_indexes"]),
    )
    if checkpoint is None:
        nn.init.trunc_normal_(encoder.pos_embed, std=0.02)
    prompt_encoder = PromptEncoder(
        embed_dim=PROMPT_DIM,
        image_embedding_size=(grid, grid),
        input_image_size=(image_size, image_size),
        mask_in_chans=16,
    )
    mask_decoder = MaskDecoder(
        num_multimask_outputs=3,
        transformer=TwoWayTransformer(depth=2, embedding_dim=PROMPT_DIM, mlp_dim=2048,
                                      num_heads=8),
        transformer_dim=PROMPT_DIM,
        iou_head_depth=3,
        iou_head_hidden_dim=256,
    )
    sam = Sam(encoder, prompt_encoder, mask_decoder, pixel_mean=list(PIXEL_MEAN),
              pixel_std=list(PIXEL_STD))
    if checkpoint is not None:
        load_sam_checkpoint(sam, arch, checkpoint)
    return sam


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    fix = ("give the path of an official Segment Anything checkpoint (sam_vit_b_01ec64.pth, "
           "sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth) or a state dict saved with torch.save")
    if not path.is_file():
        raise InputFileError("checkpoint file not found", path=path, fix=fix)
    try:
        # weights_only: a checkpoint is data; unpickling arbitrary objects could run code.
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise InputFileError(
            f"cannot be read as a PyTorch state dict with weights_only=True ({reason})",
            path=path,
            fix=fix + "; re-download it if it is truncated; files that need arbitrary Python "
            "objects to load are refused",
        ) from err
    if isinstance(obj, dict) and _PATCH_WEIGHT not in obj:
        for key in ("model", "state_dict"):  # common training-checkpoint wrappers
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputFileError("is not a state dict (a mapping of names to tensors)", path=path,
                             fix=fix)
    if not isinstance(obj.get(_PATCH_WEIGHT), Tensor) or obj[_PATCH_WEIGHT].ndim != 4:
        raise InputFileError(f"has no {_PATCH_WEIGHT}: not a Segment Anything state dict",
                             path=path, fix=fix)
    return obj


def _checkpoint_size(state: dict[str, Tensor]) -> tuple[int, int, str | None]:
    width = int(state[_PATCH_WEIGHT].shape[0])
    depth = len({key.split(".")[2] for key in state if key.startswith("image_encoder.blocks.")})
    name = next((n for n, s in ARCHS.items() if (s["embed_dim"], s["depth"]) == (width, depth)),
                None)
    return width, depth, name


def _resize_positional(state: dict[str, Tensor], target: dict[str, Tensor]) -> dict[str, Tensor]:
    """Resample position tables made for another input size to the model's size.

    The absolute embedding (1, G, G, C) is resampled bicubically on its G x G grid; each
    decomposed relative table (2G - 1, head_dim) of a global-attention block linearly along its
    first axis. Windowed blocks' tables depend on the window only and pass unchanged.
    """
    out = dict(state)
    if _POS_EMBED in out and _POS_EMBED in target and (
            out[_POS_EMBED].shape != target[_POS_EMBED].shape):
        old = out[_POS_EMBED]
        grid = target[_POS_EMBED].shape[1:3]
        new = F.interpolate(old.permute(0, 3, 1, 2).float(), size=tuple(grid), mode="bicubic",
                            align_corners=False)
        out[_POS_EMBED] = new.permute(0, 2, 3, 1).contiguous().to(old.dtype)
    for name, ref in target.items():
        if not name.endswith(("rel_pos_h", "rel_pos_w")) or name not in out:
            continue
        old = out[name]
        if old.ndim == 2 and old.shape[1] == ref.shape[1] and old.shape[0] != ref.shape[0]:
            new = F.interpolate(old.t()[None].float(), size=ref.shape[0], mode="linear",
                                align_corners=False)
            out[name] = new[0].t().contiguous().to(old.dtype)
    return out


def load_sam_checkpoint(sam: Sam, arch: str, checkpoint: str | Path) -> None:
    """Load a Segment Anything state dict into ``sam``, adapting it to ``sam``'s input size.

    A checkpoint made at 1024 x 1024 (all official ones) loads into a model of another size:
    the absolute position embedding is resampled bicubically and the global blocks' relative
    position tables linearly (:func:`_resize_positional`), as needed when DB-SAM (Qin et al.,
    MICCAI 2024, arXiv:2410.04172) or SAM is run at a smaller input.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        Built by :func:`build_sam` with the same ``arch``.
    arch : str
        The encoder size the checkpoint must have.
    checkpoint : str or Path
        A plain SAM state dict (keys ``image_encoder.*``, ``prompt_encoder.*``,
        ``mask_decoder.*``), optionally wrapped under ``"model"`` or ``"state_dict"``. Read with
        ``torch.load(..., weights_only=True)``.

    Raises
    ------
    medio.ConfigError
        The checkpoint's encoder has another size than ``arch`` (the message names the size it
        has and the ``--arch`` to pass).
    medio.InputFileError
        The file is missing, damaged, refused by ``weights_only`` loading, not a SAM state dict,
        or its tensors do not fit the model.
    """
    path = Path(checkpoint)
    spec = _arch_spec(arch)
    if sam.image_encoder.patch_embed.proj.out_channels != spec["embed_dim"]:
        raise ValueError(f"the model given was not built with arch {arch!r}")
    state = _read_state_dict(path)
    width, depth, name = _checkpoint_size(state)
    if name != arch:
        if name is None:
            raise ConfigError(
                f"this checkpoint's image encoder has width {width} and {depth} blocks, which "
                f"is none of {', '.join(ARCHS)}; {_describe(arch)} was asked for",
                path=path, fix="use an official SAM checkpoint for vit_b, vit_l or vit_h")
        raise ConfigError(
            f"this checkpoint is {_describe(name)}, but {_describe(arch)} was asked for",
            path=path, fix=f"pass --arch {name}")
    target = sam.state_dict()
    foreign = sorted(k for k in state if not k.startswith(_SAM_PREFIXES))
    if foreign:
        raise InputFileError(
            f"holds tensors that are not Segment Anything's, e.g. {', '.join(foreign[:3])}",
            path=path,
            fix="pass a plain SAM checkpoint here; a DB-SAM training checkpoint is loaded with "
            "its model's load_state_dict")
    state = _resize_positional(state, target)
    missing = sorted(set(target) - set(state))
    unexpected = sorted(set(state) - set(target))
    wrong = sorted(k for k in set(state) & set(target) if state[k].shape != target[k].shape)
    if missing or unexpected or wrong:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                ("shape differs", wrong))
            if keys)
        raise InputFileError(f"does not fit a {arch} Segment Anything model ({detail})",
                             path=path, fix="use an unmodified official SAM checkpoint")
    sam.load_state_dict(state, strict=True)


def arch_of(sam: Sam) -> str:
    """Name of the :data:`ARCHS` entry ``sam``'s image encoder was built with, or ``"custom"``."""
    encoder = sam.image_encoder
    found = {
        "embed_dim": encoder.patch_embed.proj.out_channels,
        "depth": len(encoder.blocks),
        "num_heads": encoder.blocks[0].attn.num_heads,
        "global_attn_indexes": tuple(i for i, b in enumerate(encoder.blocks)
                                     if b.window_size == 0),
        "window_size": max(b.window_size for b in encoder.blocks),
    }
    for name, spec in ARCHS.items():
        if {**spec, "global_attn_indexes": tuple(spec["global_attn_indexes"])} == found:
            return name
    return "custom"


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

    Attributes
    ----------
    image_size : int
        Side S of the square, pixel-normalised input.
    arch : str
        The encoder size (a key of :data:`ARCHS`, or ``"custom"``).
    """

    image_size: int
    arch: str

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder
        self.image_size = int(sam.image_encoder.img_size)
        self.arch = arch_of(sam)
        self.grid = self.image_size // PATCH_SIZE
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
            The image embedding, (B, 256, S/16, S/16).
        """

    def decode(self, embeddings: Tensor, boxes: Tensor | None = None,
               mask_prompt: Tensor | None = None) -> Tensor:
        """Predict one mask per batch element from its embedding and its own prompt.

        SAM's ``MaskDecoder.forward`` repeats each image embedding once per prompt, which is
        meant for many prompts on one image; here each of the B embeddings is paired with the
        prompt of the same index, in one batched pass through the decoder's modules.

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
        decoder = self.mask_decoder
        # The transformer attends over all output tokens, so the unused ones stay in.
        tokens = torch.cat([decoder.iou_token.weight, decoder.mask_tokens.weight], dim=0)
        tokens = torch.cat([tokens.unsqueeze(0).expand(b, -1, -1), sparse.to(tokens.dtype)],
                           dim=1)
        # Channels-last, so that the transformer's flatten-and-permute to tokens is a view and
        # its per-token ops read contiguous memory (about 15 % of decode time on the CPU).
        src = (embeddings + dense).contiguous(memory_format=torch.channels_last)
        pos = self.prompt_encoder.get_dense_pe().expand(b, -1, -1, -1).contiguous(
            memory_format=torch.channels_last)
        hs, src = decoder.transformer(src, pos, tokens)
        hyper = decoder.output_hypernetworks_mlps[0](hs[:, 1])
        upscaled = _upscale_tokens(decoder.output_upscaling, src, g)  # (B, 4g * 4g, C/8)
        masks = torch.bmm(upscaled, hyper.unsqueeze(2).to(upscaled.dtype))
        return masks.view(b, 1, 4 * g, 4 * g)

    def forward(self, images: Tensor, boxes: Tensor | None = None,
                mask_prompt: Tensor | None = None) -> Tensor:
        """``decode(embed(images), boxes, mask_prompt)``: (B, 1, S/4, S/4) mask logits."""
        return self.decode(self.embed(images), boxes, mask_prompt)


def _deconv2x2(x: Tensor, conv: nn.ConvTranspose2d, h: int, w: int) -> Tensor:
    """A kernel-2 stride-2 transposed convolution of channels-last tokens, as one matmul.

    Each input pixel writes its own 2 x 2 output block, so the layer is a per-token linear map
    C -> 4 C' and a reshuffle; on the CPU this is several times faster than ConvTranspose2d
    on the token layout the decoder's transformer returns.

    Parameters
    ----------
    x : Tensor
        (B, h * w, C) tokens, row-major.
    conv : torch.nn.ConvTranspose2d
        Its weight (C, C', 2, 2) and bias (C',) are used.

    Returns
    -------
    Tensor
        (B, 2h * 2w, C') tokens, row-major.
    """
    b, c_out = x.shape[0], conv.out_channels
    y = x @ conv.weight.reshape(x.shape[-1], c_out * 4).to(x.dtype)
    y = y.view(b, h, w, c_out, 2, 2).permute(0, 1, 4, 2, 5, 3).reshape(b, 4 * h * w, c_out)
    return y + conv.bias.to(y.dtype)


def _upscale_tokens(upscaling: nn.Sequential, src: Tensor, g: int) -> Tensor:
    """SAM's ``output_upscaling`` (deconv, LayerNorm2d, act, deconv, act) on channels-last
    tokens: (B, g * g, C) -> (B, 4g * 4g, C/8), the same maps with SAM's parameters."""
    deconv1, norm, act1, deconv2, act2 = upscaling
    if not all(isinstance(m, nn.ConvTranspose2d) and tuple(m.kernel_size) == (2, 2)
               and tuple(m.stride) == (2, 2) and tuple(m.padding) == (0, 0)
               for m in (deconv1, deconv2)) or not isinstance(norm, LayerNorm2d):
        b = src.shape[0]
        out = upscaling(src.transpose(1, 2).reshape(b, -1, g, g))
        return out.flatten(2).transpose(1, 2)
    y = _deconv2x2(src, deconv1, g, g)
    y = F.layer_norm(y, (y.shape[-1],), norm.weight.to(y.dtype), norm.bias.to(y.dtype), norm.eps)
    return act2(_deconv2x2(act1(y), deconv2, 2 * g, 2 * g))


class VanillaSAM(PromptableSegmenter):
    """Segment Anything as is: the baseline of DB-SAM (Qin et al., MICCAI 2024,
    arXiv:2410.04172).

    The whole image encoder, neck included, is frozen; fine-tuning trains the prompt encoder
    and the mask decoder. While the encoder is frozen it runs without autograd.

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`.
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__(sam)
        self.image_encoder.requires_grad_(False)

    def embed(self, images: Tensor) -> Tensor:
        """SAM's image embedding, (B, 256, S/16, S/16), of normalised (B, 3, S, S) images."""
        self._check_images(images)
        needs_grad = images.requires_grad or any(
            p.requires_grad for p in self.image_encoder.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and needs_grad):
            return self.image_encoder(images)


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


class DBSAM(PromptableSegmenter):
    """DB-SAM: dual-branch adapted Segment Anything (Qin et al., MICCAI 2024,
    arXiv:2410.04172).

    ``embed``: patch embedding and position embedding of SAM's frozen ViT; after every frozen
    transformer block a trainable :class:`ChannelAttentionBlock`; in parallel a
    :class:`ConvBranch` on the image; after each global-attention block (four in ViT-B/L/H,
    two in ``tiny``) a :class:`BilateralCrossAttention` between the two branches; a
    :class:`ViTConvFusion`; SAM's neck. ``decode``: SAM's prompt encoder and mask decoder.

    Trainable: the added blocks, the neck, the prompt encoder and the mask decoder (less its
    unused single-mask parts, see :class:`PromptableSegmenter`). Frozen
    (``requires_grad=False``): SAM's patch embedding, position embedding and transformer blocks.

    Untrained, DB-SAM's image embedding equals SAM's exactly: every added residual path ends in
    a zero-initialised projection or scale (see the blocks' docstrings).

    Parameters
    ----------
    sam : segment_anything.modeling.Sam
        From :func:`build_sam`; its modules are adopted, not copied.
    kv_grid : int
        Pooled key/value grid side of the cross-attention (M = ``kv_grid``\\ :sup:`2` keys).
    ffn_ratio : float
        FFN hidden width of the cross-attention and fusion blocks, as a multiple of the ViT
        width. The default 1.0 keeps ViT-B's encoder at 1024 x 1024 at 1.27x SAM's
        floating-point work (1.2x its CPU time); the usual transformer value 4.0 would cost
        1.54x (see ``benchmarks/bench_dbsam.py``).
    conv_widths : tuple of int, optional
        Widths of the convolution branch's stem and three stages; by default C/24, C/12, C/6
        and C/3 rounded up to multiples of 8 (32, 64, 128, 256 for ViT-B; 8, 16, 32, 64 for
        ``tiny``).
    """

    def __init__(self, sam: Sam, *, kv_grid: int = 16, ffn_ratio: float = 1.0,
                 conv_widths: tuple[int, ...] | None = None) -> None:
        super().__init__(sam)
        encoder = self.image_encoder
        dim = encoder.patch_embed.proj.out_channels
        if conv_widths is None:
            # C/24, C/12, C/6, C/3 in multiples of 8: 32-64-128-256 for ViT-B, and a branch
            # that stays in proportion for the narrower tiny and wider ViT-L/H encoders.
            conv_widths = tuple(8 * math.ceil(dim / d / 8) for d in (24, 12, 6, 3))
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
        self.cross_attn = nn.ModuleList(
            BilateralCrossAttention(dim, heads, kv_grid=kv_grid, ffn_ratio=ffn_ratio)
            for _ in self.stage_indexes)
        self.fusion = ViTConvFusion(dim, ffn_ratio=ffn_ratio)

    def embed(self, images: Tensor) -> Tensor:
        """DB-SAM's image embedding, (B, 256, S/16, S/16), of normalised (B, 3, S, S) images."""
        self._check_images(images)
        encoder = self.image_encoder
        x = encoder.patch_embed(images)
        if encoder.pos_embed is not None:
            x = x + encoder.pos_embed
        conv = self.conv_branch(images)
        stage = dict(zip(self.stage_indexes, self.cross_attn, strict=True))
        for i, (block, adapter) in enumerate(zip(encoder.blocks, self.adapters, strict=True)):
            x = adapter(block(x))
            if i in stage:
                x, conv = stage[i](x, conv)
        x = self.fusion(x, conv)
        return encoder.neck(x.permute(0, 3, 1, 2))


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------

MODEL_KINDS = {"dbsam": DBSAM, "sam": VanillaSAM}


def build_model(kind: str, arch: str = "tiny", image_size: int = 1024,
                checkpoint: str | Path | None = None) -> PromptableSegmenter:
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

    Returns
    -------
    PromptableSegmenter

    Raises
    ------
    medio.ConfigError, medio.InputFileError
        As :func:`build_sam`; also for an unknown ``kind``.
    """
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}",
                          fix=f"use one of {', '.join(MODEL_KINDS)}")
    return MODEL_KINDS[kind](build_sam(arch, image_size, checkpoint))


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

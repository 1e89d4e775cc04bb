"""SAM's encoder sizes, building SAM at any input size, and loading official checkpoints safely.

segment-anything's own builder (``build_sam``) hard-codes a 1024 x 1024 input and loads
checkpoints with a plain ``torch.load``; here the modules (``ImageEncoderViT``,
``PromptEncoder``, ``MaskDecoder``) are built directly for any input side S (a multiple of 16),
and checkpoints load with ``weights_only=True`` on the CPU, with a clear error for a checkpoint
of another ViT size and interpolated position tables for another input size.
"""

from __future__ import annotations

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
from torch import Tensor, nn

from medcl.io.errors import ConfigError, InputFileError

__all__ = [
    "ARCHS",
    "PATCH_SIZE",
    "PIXEL_MEAN",
    "PIXEL_STD",
    "PROMPT_DIM",
    "arch_of",
    "build_sam",
    "checkpoint_arch",
    "key_difference",
    "load_sam_checkpoint",
    "read_state_dict",
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
                          fix=f"pass --arch one of {', '.join(ARCHS)}, litemedsam")
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
        A key of :data:`ARCHS`: ``"tiny"``, ``"vit_b"``, ``"vit_l"`` or ``"vit_h"``; or
        ``"litemedsam"``, which builds LiteMedSAM instead
        (:func:`medcl.dbsam.litemedsam.build_litemedsam`).
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
    medcl.io.ConfigError
        Unknown ``arch``, a bad ``image_size``, or a checkpoint of another encoder size.
    medcl.io.InputFileError
        A missing, damaged or unsafe checkpoint file.
    """
    if arch == "litemedsam":
        from .litemedsam import build_litemedsam

        return build_litemedsam(image_size, checkpoint)
    spec = _arch_spec(arch)
    if not isinstance(image_size, int) or image_size <= 0 or image_size % PATCH_SIZE:
        raise ConfigError(f"image size {image_size!r} is not a positive multiple of {PATCH_SIZE}",
                          fix="pass --image-size 256, 512 or 1024")
    # read and check the checkpoint before the (large) model is built
    state = None if checkpoint is None else _checked_state(Path(checkpoint), arch)
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
        load_sam_checkpoint(sam, arch, checkpoint, state=state)
    return sam


LITE_KEY = "image_encoder.layers.0.blocks.0.conv1.c.weight"
"""A tensor only LiteMedSAM's TinyViT encoder has (its first MBConv's expansion)."""


def read_state_dict(path: Path, fix: str) -> dict[str, Tensor]:
    """A checkpoint's state dict, read with ``weights_only=True`` on the CPU.

    A training checkpoint that wraps the state dict under ``"model"`` or ``"state_dict"`` is
    unwrapped.

    Raises
    ------
    medcl.io.InputFileError
        Missing file, truncated or damaged file, a pickle that needs arbitrary Python objects
        (refused: loading it could run code), or not a mapping of names to tensors; ``fix`` is
        the message's fix.
    """
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
    if isinstance(obj, dict) and _PATCH_WEIGHT not in obj and LITE_KEY not in obj:
        for key in ("model", "state_dict"):  # common training-checkpoint wrappers
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise InputFileError("is not a state dict (a mapping of names to tensors)", path=path,
                             fix=fix)
    return obj


def key_difference(state: dict[str, Tensor], expected: set[str] | dict) -> str:
    """``"missing: a, b ... (N); unexpected: c ... (M)"`` of a state dict against a model's
    keys, at most three names of each, for one-line error messages."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    return "; ".join(
        f"{label}: {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)})"
        for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys)


def checkpoint_arch(state: dict[str, Tensor]) -> str | None:
    """The ``--arch`` a state dict fits: ``"litemedsam"`` (TinyViT encoder), a key of
    :data:`ARCHS` (SAM ViT), or ``None`` (neither)."""
    if isinstance(state.get(LITE_KEY), Tensor):
        return "litemedsam"
    if isinstance(state.get(_PATCH_WEIGHT), Tensor) and state[_PATCH_WEIGHT].ndim == 4:
        return _checkpoint_size(state)[2]
    return None


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    fix = ("give the path of an official Segment Anything checkpoint (sam_vit_b_01ec64.pth, "
           "sam_vit_l_0b3195.pth, sam_vit_h_4b8939.pth) or a state dict saved with torch.save")
    obj = read_state_dict(path, fix)
    if checkpoint_arch(obj) == "litemedsam":
        expected = {_PATCH_WEIGHT, _POS_EMBED, "image_encoder.blocks.0.attn.qkv.weight"}
        lite = {k for k in obj if k.startswith("image_encoder.")}
        raise ConfigError(
            "this checkpoint is LiteMedSAM's (TinyViT image encoder), not a SAM ViT ("
            + key_difference(lite, expected) + ")", path=path, fix="pass --arch litemedsam")
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


def load_sam_checkpoint(sam: Sam, arch: str, checkpoint: str | Path, *,
                        state: dict[str, Tensor] | None = None) -> None:
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
    state : dict, optional
        The checkpoint's contents, already read and checked (by :func:`build_sam`, which
        reads the file before it builds the model, so a wrong checkpoint fails fast).

    Raises
    ------
    medcl.io.ConfigError
        The checkpoint's encoder has another size than ``arch`` (the message names the size it
        has and the ``--arch`` to pass).
    medcl.io.InputFileError
        The file is missing, damaged, refused by ``weights_only`` loading, not a SAM state dict,
        or its tensors do not fit the model.
    """
    path = Path(checkpoint)
    spec = _arch_spec(arch)
    if sam.image_encoder.patch_embed.proj.out_channels != spec["embed_dim"]:
        raise ValueError(f"the model given was not built with arch {arch!r}")
    if state is None:
        state = _checked_state(path, arch)
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


def _checked_state(path: Path, arch: str) -> dict[str, Tensor]:
    """A SAM checkpoint's state dict, refused (before any model is built) when its encoder has
    another size than ``arch``."""
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
    return state


def arch_of(sam: Sam) -> str:
    """Name of the :data:`ARCHS` entry ``sam``'s image encoder was built with, ``"litemedsam"``
    for LiteMedSAM's TinyViT encoder, or ``"custom"``."""
    encoder = sam.image_encoder
    if not isinstance(encoder, ImageEncoderViT):
        return "litemedsam" if type(encoder).__name__ == "TinyViTSAM" else "custom"
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

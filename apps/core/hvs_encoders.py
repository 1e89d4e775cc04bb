"""Encoder specs of ``medcl core hvs run --encoder SPEC``.

* ``sam-vit-b:PATH`` — Segment Anything's ViT-B image encoder (Kirillov et al., 2023) with the
  weights of a checkpoint file (a full SAM state dict or the image encoder's alone);
* ``torchvision:NAME:PATH`` — a torchvision classification model with a state dict from PATH,
  its classifier replaced by the identity (pooled penultimate features), ImageNet normalisation;
* ``APP:REST`` — any ``medcl.encoders`` entry point (``dbsam:RUN``, ``sepclr:RUN``,
  ``core:RUN``): the apps plug in without being imported here.

Every file loads with ``torch.load(..., weights_only=True)``; an unknown spec, a missing file or
weights of another architecture raise a :class:`medcl.io.MedclError` (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

ENCODER_HELP = ("sam-vit-b:PATH, torchvision:NAME:PATH, or an app's run: core:RUN, dbsam:RUN, "
                "sepclr:RUN[:common|:salient].")

SAM_VIT_B = {"embed_dim": 768, "depth": 12, "num_heads": 12, "global_attn_indexes": (2, 5, 8, 11)}
"""SAM ViT-B image-encoder sizes (segment-anything's ``build_sam_vit_b``)."""
SAM_MEAN = (123.675, 116.28, 103.53)
SAM_STD = (58.395, 57.12, 57.375)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _read_weights(path: Path) -> dict:
    import torch

    from medcl.io import InputFileError

    if not path.is_file():
        raise InputFileError("weights file not found", path=path,
                             fix="give the path of a PyTorch state dict (.pt/.pth)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or unsafe files
        raise InputFileError(f"cannot be read as a state dict with weights_only=True "
                             f"({type(exc).__name__})", path=path,
                             fix="save the weights with torch.save(model.state_dict(), PATH)"
                             ) from exc
    for key in ("model", "state_dict"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise InputFileError("holds no state dict", path=path,
                             fix="save the weights with torch.save(model.state_dict(), PATH)")
    return state


def _load_strict(net: nn.Module, state: dict, path: Path, what: str) -> None:
    from medcl.io import ConfigError

    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"the weights do not fit {what} ({first[:160]})", path=path,
                          fix=f"give a checkpoint of {what}") from exc


def sam_image_encoder(embed_dim: int = 768, depth: int = 12, num_heads: int = 12,
                      global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11),
                      img_size: int = 1024) -> nn.Module:
    """segment-anything's ``ImageEncoderViT`` (patch 16, window 14, relative positions,
    256-channel neck) of the given sizes, randomly initialised."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT

    return ImageEncoderViT(depth=depth, embed_dim=embed_dim, img_size=img_size, mlp_ratio=4,
                           norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                           num_heads=num_heads, patch_size=16, qkv_bias=True,
                           use_rel_pos=True, global_attn_indexes=global_attn_indexes,
                           window_size=14, out_chans=256)


def sam_adapter(encoder: nn.Module) -> nn.Module:
    """SAM's image encoder behind the probe's input convention: resized to its input side,
    normalised in 0-255 units with SAM's pixel mean and std; features ``(N, 256, S/16, S/16)``
    (the paper's "SAM encoder map")."""
    from medcl.contrastive.hvs.adapter import DisplayAdapter

    return DisplayAdapter(encoder, size=int(encoder.img_size), scale=255.0, mean=SAM_MEAN,
                          std=SAM_STD).eval()


def load_sam_vit_b(path: Path) -> nn.Module:
    state = _read_weights(path)
    if any(k.startswith("image_encoder.") for k in state):
        state = {k.removeprefix("image_encoder."): v for k, v in state.items()
                 if k.startswith("image_encoder.")}
    encoder = sam_image_encoder(**SAM_VIT_B)
    _load_strict(encoder, state, path, "SAM's ViT-B image encoder")
    return sam_adapter(encoder)


def load_torchvision(name: str, path: Path) -> nn.Module:
    import torchvision
    from torch import nn

    from medcl.contrastive.hvs.adapter import DisplayAdapter
    from medcl.io import ConfigError

    if name not in torchvision.models.list_models():
        raise ConfigError(f"unknown torchvision model {name!r}",
                          fix="name one of torchvision.models.list_models(), e.g. resnet50")
    net = torchvision.models.get_model(name, weights=None)
    _load_strict(net, _read_weights(path), path, f"torchvision's {name}")
    for attr in ("fc", "classifier", "head", "heads"):
        if isinstance(getattr(net, attr, None), nn.Module):
            setattr(net, attr, nn.Identity())
            break
    return DisplayAdapter(net, mean=IMAGENET_MEAN, std=IMAGENET_STD).eval()


def resolve_encoder(spec: str) -> nn.Module:
    """The encoder module of ``spec`` (see the module docstring)."""
    from importlib.metadata import entry_points

    from medcl.io import ConfigError, MedclError

    prefix, sep, rest = spec.partition(":")
    if not sep or not rest:
        raise ConfigError(f"encoder spec {spec!r} has no KIND:ARGUMENT form",
                          fix=f"pass --encoder {ENCODER_HELP}")
    if prefix == "sam-vit-b":
        return load_sam_vit_b(Path(rest))
    if prefix == "torchvision":
        name, sep, path = rest.partition(":")
        if not sep or not path:
            raise ConfigError(f"encoder spec {spec!r} lacks NAME:PATH",
                              fix="pass --encoder torchvision:resnet50:weights.pth")
        return load_torchvision(name, Path(path))
    found = {ep.name: ep for ep in entry_points(group="medcl.encoders")}
    if prefix not in found:
        known = ", ".join(["sam-vit-b", "torchvision", *sorted(found)])
        raise ConfigError(f"encoder kind {prefix!r} is not known (known: {known})",
                          fix=f"pass --encoder {ENCODER_HELP}")
    try:
        return found[prefix].load()(rest)
    except MedclError:
        raise
    except (ImportError, OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"encoder spec {spec!r} does not load ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})"[:300],
                          path=rest, fix=f"pass --encoder {ENCODER_HELP}") from exc

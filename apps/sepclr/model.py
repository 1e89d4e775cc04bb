"""Encoders of the SepCLR harness: SepCLR's two-encoder network and the pooled SimCLR baseline.

As the authors' ``architectures.py`` (github.com/neurospin-projects/2024_rlouiset_sep_clr;
Louiset et al. 2024, ICLR, arXiv:2402.11928, sec. 4): each encoder is a ResNet whose last
linear layer maps the pooled features to the code (``common_dim`` or ``salient_dim``), followed
by a projector ``code -> 128 -> code`` with batch norm and ReLU; the loss reads the projector's
output, the probes read the code. Each model answers ``represent(x) -> (common, salient)``, the
codes, so that SepCLR, SimCLR and the contrastive VAE are evaluated the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

CIFAR_STEM_MAX_SIZE = 64
"""Images of at most this many pixels get the CIFAR stem (3x3 stride 1, no max-pool)."""


def resnet_encoder(in_channels: int, widths: Sequence[int], spatial_dims: int = 2,
                   stem_stride: int = 2) -> nn.Module:
    """A small MONAI ResNet (basic blocks, one per stage) returning pooled features.

    A 3x3 stem without max pooling suits small images (32-64 px): stride 2 (default) halves the
    resolution once, four times cheaper on the CPU than stride 1 at 32 px. The widths set the
    channels of the four stages (ResNet-18 is ``[64, 128, 256, 512]`` with two blocks per
    stage). Output: ``(N, widths[-1])``.
    """
    from monai.networks.nets import ResNet

    if len(widths) != 4 or min(widths) < 1:
        raise ValueError(f"widths must be four positive channel counts, got {list(widths)}")
    return ResNet("basic", [1, 1, 1, 1], list(widths), spatial_dims=spatial_dims,
                  n_input_channels=in_channels, conv1_t_size=3, conv1_t_stride=stem_stride,
                  no_max_pool=True, feed_forward=False)


def read_resnet18_weights(path: str | Path) -> dict[str, Tensor]:
    """Read a torchvision ResNet-18 state dict from ``path`` (``weights_only=True``).

    Raises
    ------
    medcl.io.InputFileError
        If the file is missing, unreadable, or not a ResNet-18 state dict; the message names
        the file and how to get one (nothing is ever downloaded here).
    """
    from torchvision.models import resnet18

    from medcl.io import InputFileError

    path = Path(path)
    fix = ("give a torchvision ResNet-18 state dict saved with torch.save(model.state_dict()), "
           "e.g. resnet18-f37072fd.pth of ResNet18_Weights.IMAGENET1K_V1 downloaded by hand")
    if not path.is_file():
        raise InputFileError("pretrained weights file not found", path=path, fix=fix)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unpickling errors
        raise InputFileError(f"cannot read the weights ({type(exc).__name__}: {exc})",
                             path=path, fix=fix) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputFileError("the file holds no state dict", path=path, fix=fix)
    want = {k: v.shape for k, v in resnet18().state_dict().items()}
    missing = sorted(k for k in want if k not in state)
    wrong = sorted(k for k in want if k in state and tuple(state[k].shape) != tuple(want[k]))
    if missing or wrong:
        bad = (missing + wrong)[:3]
        raise InputFileError(f"not a torchvision ResNet-18 state dict ({len(missing)} keys "
                             f"missing, {len(wrong)} of another shape, e.g. {bad})",
                             path=path, fix=fix)
    return state


def resnet18_encoder(in_channels: int, image_size: int, code_dim: int,
                     weights: dict[str, Tensor] | None = None) -> nn.Module:
    """torchvision's ResNet-18 (2 basic blocks per stage, 64-512 channels), its ``fc`` mapping
    the 512 pooled features to ``code_dim``. Output: ``(N, code_dim)``.

    For images of at most :data:`CIFAR_STEM_MAX_SIZE` pixels the stem is the authors' CIFAR one
    (SimCLR, Chen et al. 2020, appendix B.9): a 3x3 stride-1 convolution and no max-pool;
    larger images keep the 7x7 stride-2 stem and the max-pool (the authors' CelebA, CheXpert
    and ODIR encoders). ``weights`` (a torchvision state dict, :func:`read_resnet18_weights`)
    initialise every layer but ``fc`` (always new, as the authors') and a replaced stem; a
    7x7 stem on grayscale input takes the RGB kernels summed over the input channels.
    """
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    small = image_size <= CIFAR_STEM_MAX_SIZE
    if weights is not None:
        keep = {k: v for k, v in weights.items()
                if not k.startswith("fc.") and not (small and k == "conv1.weight")}
        if not small and in_channels == 1:  # grayscale: the RGB kernels summed
            keep["conv1.weight"] = weights["conv1.weight"].sum(1, keepdim=True)
        net.load_state_dict({k: v for k, v in keep.items()
                             if k != "conv1.weight" or in_channels == 3}, strict=False)
    if small:
        net.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    elif in_channels != 3:
        if in_channels != 1:
            raise ValueError(f"images have 1 or 3 channels, got {in_channels}")
        conv = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
        if weights is not None:
            conv.weight.data.copy_(keep["conv1.weight"])
        net.conv1 = conv
    net.fc = nn.Linear(512, code_dim)
    return net


def build_encoder(kind: str, in_channels: int, image_size: int, code_dim: int,
                  widths: Sequence[int] = (16, 32, 64, 128),
                  weights: dict[str, Tensor] | None = None) -> nn.Module:
    """``resnet18`` (:func:`resnet18_encoder`) or ``small`` (:func:`resnet_encoder` then a linear
    layer to the code), each ``(N, C, H, W) -> (N, code_dim)``."""
    if kind == "resnet18":
        return resnet18_encoder(in_channels, image_size, code_dim, weights)
    if kind == "small":
        return nn.Sequential(resnet_encoder(in_channels, widths), nn.Linear(widths[-1], code_dim))
    raise ValueError(f"unknown encoder {kind!r}; choose resnet18 or small")


def projector(code_dim: int, hidden: int = 128) -> nn.Sequential:
    """The authors' projector: ``Linear(code, hidden) -> BatchNorm1d -> ReLU -> Linear(hidden,
    code)``."""
    return nn.Sequential(nn.Linear(code_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                         nn.Linear(hidden, code_dim))


class SepCLRNet(nn.Module):
    """Common and salient encoders, each followed by the authors' projector (Louiset et al.
    2024, sec. 4: two encoders + projectors; common codes normalised in the loss, salient codes
    Euclidean).

    ``forward(x)`` is one pass of one batch (the training step calls it once per view, as the
    authors); ``represent(x)`` returns the codes (the encoders' outputs) that the probes read.
    """

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64, 128),
                 common_dim: int = 32, salient_dim: int = 32, *, encoder: str = "small",
                 image_size: int = 32, projector_hidden: int = 128,
                 weights: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        self.common_encoder = build_encoder(encoder, in_channels, image_size, common_dim,
                                            widths, weights)
        self.salient_encoder = build_encoder(encoder, in_channels, image_size, salient_dim,
                                             widths, weights)
        self.common_head = projector(common_dim, projector_hidden)
        self.salient_head = projector(salient_dim, projector_hidden)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x``: (N, C, H, W) -> common head (N, common_dim), salient head (N, salient_dim)."""
        return (self.common_head(self.common_encoder(x)),
                self.salient_head(self.salient_encoder(x)))

    @torch.no_grad()
    def represent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """The codes: common (N, common_dim), salient (N, salient_dim)."""
        return self.common_encoder(x), self.salient_encoder(x)


class PooledSimCLRNet(nn.Module):
    """Baseline: one encoder trained with NT-Xent on background and target pooled; its code of
    ``common_dim + salient_dim`` is split in two parts read as "common" and "salient" (no
    mechanism separates them, which is the point of the comparison)."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (16, 32, 64, 128),
                 common_dim: int = 32, salient_dim: int = 32, *, encoder: str = "small",
                 image_size: int = 32, projector_hidden: int = 128,
                 weights: dict[str, Tensor] | None = None) -> None:
        super().__init__()
        self.common_dim = common_dim
        code = common_dim + salient_dim
        self.encoder = build_encoder(encoder, in_channels, image_size, code, widths, weights)
        self.head = projector(code, projector_hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.encoder(x))

    @torch.no_grad()
    def represent(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)
        return h[:, :self.common_dim], h[:, self.common_dim:]

"""One input convention for every encoder the low-level vision probe sees.

An encoder plugged into the probe is a ``torch.nn.Module`` mapping display-encoded RGB images
``(N, 3, H, W)`` in ``[0, 1]`` (:func:`.stimuli.encode_display`) to features ``(N, ...)``.
:class:`DisplayAdapter` wraps a network trained on another input convention: channel count,
fixed input size (bilinear resize, as SAM's preprocessing resizes), value scale and per-channel
normalisation, and which method of the network gives the features.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["DisplayAdapter"]

_Y709 = (0.2126, 0.7152, 0.0722)


class DisplayAdapter(nn.Module):
    """Adapt ``(N, 3, H, W)`` display values in [0, 1] to ``net`` and return its features.

    Parameters
    ----------
    net : nn.Module
        The wrapped network (kept as a submodule, so ``.to(device)`` moves it).
    channels : int
        Input channels of ``net``: 3 (RGB) or 1 (Rec. 709 luma of the display values).
    size : int, optional
        Square input side of ``net``; images are resized bilinearly (no antialiasing) when
        they differ. ``None`` feeds them as they are (the paper's 224 px).
    scale : float
        Multiplier of the display values (255 for networks normalised in 0-255 units).
    mean, std : sequence of float, optional
        Per-channel normalisation after scaling.
    forward_fn : callable, optional
        ``forward_fn(net, x) -> features`` when the features are not ``net(x)`` (e.g. SAM's
        ``image_encoder`` or a representation method). A tuple output keeps its first item.
    """

    def __init__(self, net: nn.Module, *, channels: int = 3, size: int | None = None,
                 scale: float = 1.0, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None,
                 forward_fn: Callable[[nn.Module, Tensor], Tensor] | None = None) -> None:
        super().__init__()
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        self.net = net
        self.channels = channels
        self.size = size
        self.scale = float(scale)
        self.forward_fn = forward_fn
        self.register_buffer("mean", None if mean is None else
                             torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", None if std is None else
                             torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Features of ``x`` ``(N, 3, H, W)`` in [0, 1]."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (N, 3, H, W) display values, got {tuple(x.shape)}")
        if self.channels == 1:
            w = torch.tensor(_Y709, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
            x = (x * w).sum(1, keepdim=True)
        if self.size is not None and tuple(x.shape[-2:]) != (self.size, self.size):
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear",
                                          align_corners=False)
        x = x * self.scale
        if self.mean is not None:
            x = x - self.mean
        if self.std is not None:
            x = x / self.std
        out = self.net(x) if self.forward_fn is None else self.forward_fn(self.net, x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out

"""EDSR (Lim et al. 2017, "Enhanced Deep Residual Networks for Single Image Super-Resolution",
CVPRW, sec. 3.1-3.2 and fig. 2-3): residual blocks without batch norm, a global skip, and a
sub-pixel (pixel-shuffle, Shi et al. 2016) upsampler. The *baseline* has 16 blocks of 64
channels and residual scaling 1.

Departure from the authors' code: no ``MeanShift`` layers (the inputs here are in [0, 1] and
may be grey, so there is no fixed RGB mean to subtract); the global skip adds the head's
features as in the paper.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["EDSR", "edsr_baseline"]


class _ResBlock(nn.Module):
    def __init__(self, feats: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(feats, feats, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(feats, feats, 3, padding=1))
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        return x + self.res_scale * self.body(x)


def _upsampler(scale: int, feats: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    if scale in (2, 4, 8):
        for _ in range({2: 1, 4: 2, 8: 3}[scale]):
            layers += [nn.Conv2d(feats, 4 * feats, 3, padding=1), nn.PixelShuffle(2)]
    elif scale == 3:
        layers += [nn.Conv2d(feats, 9 * feats, 3, padding=1), nn.PixelShuffle(3)]
    else:
        raise ValueError(f"EDSR supports scales 2, 3, 4 and 8, not {scale}")
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """``(N, C, h, w) -> (N, C, scale h, scale w)``.

    Parameters
    ----------
    scale : {2, 3, 4, 8}
    channels : int
        Image channels (1 or 3).
    n_resblocks, n_feats, res_scale
        16, 64, 1.0 for the baseline (32, 256, 0.1 for the paper's large model).
    """

    def __init__(self, scale: int = 2, channels: int = 3, n_resblocks: int = 16,
                 n_feats: int = 64, res_scale: float = 1.0) -> None:
        super().__init__()
        self.scale, self.channels = int(scale), int(channels)
        self.head = nn.Conv2d(channels, n_feats, 3, padding=1)
        self.body = nn.Sequential(*[_ResBlock(n_feats, res_scale) for _ in range(n_resblocks)],
                                  nn.Conv2d(n_feats, n_feats, 3, padding=1))
        self.tail = nn.Sequential(_upsampler(self.scale, n_feats),
                                  nn.Conv2d(n_feats, channels, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)
        return self.tail(h + self.body(h))


def edsr_baseline(scale: int = 2, channels: int = 3, n_resblocks: int = 16,
                  n_feats: int = 64) -> EDSR:
    """EDSR-baseline (16 x 64, residual scaling 1); smaller sizes for CPU runs and tests."""
    return EDSR(scale, channels, n_resblocks, n_feats, 1.0)

"""Small encoders shared by the core's recipes (the core demo, ``medcl core image``)."""

from __future__ import annotations

from torch import Tensor, nn


class SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks, one max-pool, global average pooling: ``(N, C, H, W) ->
    (N, 4 * width)``. Any input size >= 2 pixels (the pooling is adaptive; an odd size is
    pooled with ``ceil_mode``)."""

    def __init__(self, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *block(in_channels, width), *block(width, 2 * width), nn.MaxPool2d(2, ceil_mode=True),
            *block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = 4 * width

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

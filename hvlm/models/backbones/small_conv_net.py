"""A small convolutional feature map for region features on CPU."""
from typing import Sequence

import torch.nn as nn
from torch import Tensor

from hvlm.registry import MODELS


@MODELS.register_module()
class SmallConvNet(nn.Module):
    """Stride-2 ``conv-BN-ReLU`` stages: frames -> one feature map.

    Enough to pool RoI features from the demo frames in seconds on a CPU;
    a pretrained encoder replaces it for real data.

    Args:
        channels (Sequence[int]): Output channels of each stage; the map's
            stride is ``2 ** len(channels)``.
        in_channels (int): Input channels.
    """

    def __init__(self,
                 channels: Sequence[int] = (32, 64, 128),
                 in_channels: int = 3) -> None:
        super().__init__()
        layers, c_in = [], in_channels
        for c in channels:
            layers += [
                nn.Conv2d(c_in, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True)
            ]
            c_in = c
        self.layers = nn.Sequential(*layers)
        self.out_channels = c_in
        self.stride = 2**len(channels)

    def forward(self, x: Tensor) -> Tensor:
        """``[N, 3, H, W]`` normalised frames -> ``[N, C, H/s, W/s]``."""
        return self.layers(x)

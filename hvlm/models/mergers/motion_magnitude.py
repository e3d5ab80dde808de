"""Speed and heading of a flow field."""
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class MotionMagnitude(nn.Module):
    """Split a flow field into magnitude and direction.

    Magnitude is what decides how many tokens a region keeps; direction is
    returned too because two neighbours moving in opposite directions should
    not be merged even when both are fast.

    Args:
        normalize (bool): Divide each clip's magnitudes by its largest one
            (but never by less than ``min_motion``), so the result is in
            ``[0, 1]`` whatever the clip's speed.
        min_motion (float): Speed, in pixels per frame, below which a clip
            counts as static; guards against amplifying noise.
    """

    def __init__(self, normalize: bool = True,
                 min_motion: float = 0.25) -> None:
        super().__init__()
        if min_motion <= 0:
            raise ValueError(f'min_motion={min_motion} must be > 0')
        self.normalize = normalize
        self.min_motion = min_motion

    def forward(self, flow: Tensor) -> Tuple[Tensor, Tensor]:
        """Args:
            flow (Tensor): ``[B, 2, T, H, W]`` as ``(dx, dy)``.

        Returns:
            tuple: magnitude ``[B, T, H, W]`` and direction ``[B, T, H, W]``
            in radians, ``atan2(dy, dx)``.
        """
        if flow.dim() != 5 or flow.shape[1] != 2:
            raise ValueError('MotionMagnitude expects flow [B, 2, T, H, W], '
                             f'got {tuple(flow.shape)}')
        dx, dy = flow[:, 0], flow[:, 1]  # [B, T, H, W] each
        magnitude = torch.sqrt(dx.square() + dy.square() + 1e-12)
        direction = torch.atan2(dy, dx)
        if self.normalize:
            top = magnitude.flatten(1).amax(1).clamp_min(self.min_motion)
            magnitude = magnitude / top[:, None, None, None]
        return magnitude, direction

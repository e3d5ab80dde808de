"""Speed and heading of a flow field."""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
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
            tuple: magnitude ``[B, T, H, W]`` (see :meth:`speed`) and
            direction ``[B, T, H, W]`` in radians, ``atan2(dy, dx)``.
        """
        return self.speed(flow), torch.atan2(flow[:, 1], flow[:, 0])

    def speed(self, flow: Tensor) -> Tensor:
        """The magnitude alone, for callers that do not need the direction
        (``atan2`` costs more than the rest of this module together).

        Args:
            flow (Tensor): ``[B, 2, T, H, W]`` as ``(dx, dy)``.

        Returns:
            Tensor: ``[B, T, H, W]`` magnitude, normalised per clip when
            ``normalize`` is set (:meth:`rescale`).
        """
        return self.rescale(self.raw_speed(flow), dim=(1, 2, 3))

    def rescale(self, magnitude: Tensor, dim=1) -> Tensor:
        """Divide each clip's magnitudes by its largest one, but never by
        less than ``min_motion``, when ``normalize`` is set; else return
        them unchanged. Callers that pool the magnitudes first (onto
        tokens) rescale the pooled maps, so that the fastest *token* gets 1
        and a static clip's noise stays below ``top / min_motion``.

        Args:
            magnitude (Tensor): ``[B, ...]`` speeds, in the units of
                ``min_motion``.
            dim (int or tuple): The dimensions that make up one clip.
        """
        if not self.normalize:
            return magnitude
        top = magnitude.amax(dim=dim, keepdim=True)
        return magnitude / top.clamp_min(self.min_motion)

    @staticmethod
    def raw_speed(flow: Tensor) -> Tensor:
        """``[B, T, H, W]`` magnitude of a ``[B, 2, T, H, W]`` flow, in its
        pixels per frame, never normalised."""
        if flow.dim() != 5 or flow.shape[1] != 2:
            raise ValueError('MotionMagnitude expects flow [B, 2, T, H, W], '
                             f'got {tuple(flow.shape)}')
        # Symmetric matches cancel to flows of ~1e-30 px, whose squares
        # underflow, which CPUs handle 10x slower than normal numbers; below
        # 1e-10 px the 1e-12 under the root decides the result anyway, so
        # such components are zeroed first (the result does not change).
        squares = F.hardshrink(flow, 1e-10).square()  # [B, 2, T, H, W]
        return squares.sum(1).add_(1e-12).sqrt_()  # [B, T, H, W]

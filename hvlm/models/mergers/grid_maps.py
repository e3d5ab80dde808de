"""Bring per-pixel cue maps onto the token grid.

Motion, edges and colour are measured on (downsampled) frames, but the
merger decides per token; both mergers and tests need the same mapping, so
it lives here once.
"""
from typing import Tuple

import torch.nn.functional as F
from torch import Tensor


def downsample_frames(frames: Tensor, grid: Tuple[int, int, int],
                      scale: int) -> Tensor:
    """Average-pool frames to ``scale`` pixels per token side.

    Cues are cheap at this resolution (the flow cost volume grows with the
    pixel count) and still resolve motion inside one token.

    Args:
        frames (Tensor): ``[B, C, T, H, W]`` clips.
        grid (tuple): ``(T0, H0, W0)`` token grid.
        scale (int): Pixels per token side of the result (>= 1).

    Returns:
        Tensor: ``[B, C, T, H0*scale, W0*scale]`` (time is kept).
    """
    if scale < 1:
        raise ValueError(f'scale={scale} must be >= 1')
    _, H0, W0 = grid
    T = frames.shape[2]
    return F.adaptive_avg_pool3d(frames.float(),
                                 (T, H0 * scale, W0 * scale))


def pool_to_grid(cue: Tensor, grid: Tuple[int, int, int]) -> Tensor:
    """Average a per-pixel map over each token's tubelet.

    Args:
        cue (Tensor): ``[B, T, H, W]`` map on (downsampled) frames.
        grid (tuple): ``(T0, H0, W0)``.

    Returns:
        Tensor: ``[B, T0*H0*W0]`` in the tokens' ``(t, h, w)`` order.
    """
    pooled = F.adaptive_avg_pool3d(cue.unsqueeze(1), grid)  # [B,1,T0,H0,W0]
    return pooled.flatten(1)  # [B, T0*H0*W0]


def normalize_per_clip(cue: Tensor, floor: float = 0.) -> Tensor:
    """Scale ``[B, N]`` non-negative scores to ``[0, 1]`` by each clip's
    maximum, but never by less than ``floor``: without a floor the sensor
    noise of a static clip would be blown up to full importance."""
    top = cue.amax(dim=1, keepdim=True).clamp_min(max(floor, 1e-12))
    return (cue / top).clamp(0, 1)  # [B, N]

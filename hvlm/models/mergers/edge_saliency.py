"""Saliency from image edges."""
from functools import lru_cache
from typing import Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class EdgeSaliency(nn.Module):
    """Sobel gradient magnitude of the grey frames.

    Object boundaries carry most of the information in a frame; a flat
    patch of sky can be merged with its neighbours without loss. Frames are
    turned grey by the channel mean (colour is :class:`ColorSaliency`'s
    job) and borders are replicate-padded, so a uniform frame scores zero.

    The Sobel kernels are separable (``[1, 2, 1]`` smoothing across a
    ``[-1, 0, 1]`` difference, over 8), so both responses of every frame
    come from two small matrix products with the padding built into the
    matrices: on the few-pixel cue frames a ``conv2d`` call, or a chain of
    shifted slices, costs several times that.
    """

    def forward(self, frames: Tensor) -> Tensor:
        """Args:
            frames (Tensor): ``[B, C, T, H, W]``.

        Returns:
            Tensor: ``[B, T, H, W]`` gradient magnitude.
        """
        if frames.dim() != 5:
            raise ValueError('EdgeSaliency expects frames [B, C, T, H, W], '
                             f'got {tuple(frames.shape)}')
        B, _, T, H, W = frames.shape
        grey = frames.float().mean(1)  # [B, T, H, W]
        left, right = _sobel_matrices(H, W, grey.device, grey.dtype)
        # [S_h; D_h] @ grey @ [D_w^T, S_w^T]: the top-left block is the
        # horizontal response, the bottom-right one the vertical.
        blocks = torch.bmm(
            left.expand(B * T, 2 * H, H),
            torch.mm(grey.view(B * T * H, W), right).view(B * T, H, 2 * W))
        gx, gy = blocks[:, :H, :W], blocks[:, H:, W:]  # [B*T, H, W] each
        return (gx.square() + gy.square()).add_(1e-12).sqrt_().view(
            B, T, H, W)


@lru_cache(maxsize=16)
def _sobel_matrices(height: int, width: int, device: torch.device,
                    dtype: torch.dtype) -> Tuple[Tensor, Tensor]:
    """``[2H, H]`` left factor ``[S_h; D_h] / 8`` and ``[W, 2W]`` right
    factor ``[D_w^T, S_w^T]`` of the two Sobel responses, where ``S`` is
    the ``[1, 2, 1]`` smoothing and ``D`` the ``[-1, 0, 1]`` difference of
    one side, with replicate padding (taps beyond a border fall on it).
    Cached: asked for at every forward."""

    def taps(n: int, weights: Tuple[float, float, float]) -> Tensor:
        rows = torch.arange(n, device=device)
        matrix = torch.zeros(n, n, device=device, dtype=dtype)
        for shift, weight in zip((-1, 0, 1), weights):
            matrix.index_put_((rows, (rows + shift).clamp(0, n - 1)),
                              torch.tensor(weight, dtype=dtype,
                                           device=device),
                              accumulate=True)
        return matrix

    with torch.inference_mode(False):
        smooth, diff = (1., 2., 1.), (-1., 0., 1.)
        left = torch.cat([taps(height, smooth), taps(height, diff)]) / 8
        right = torch.cat([taps(width, diff), taps(width, smooth)]).t()
        return left, right.contiguous()

"""Saliency from image edges."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class EdgeSaliency(nn.Module):
    """Sobel gradient magnitude of the grey frames.

    Object boundaries carry most of the information in a frame; a flat
    patch of sky can be merged with its neighbours without loss. Frames are
    turned grey by the channel mean (colour is :class:`ColorSaliency`'s
    job) and borders are replicate-padded, so a uniform frame scores zero.
    """

    def __init__(self) -> None:
        super().__init__()
        sobel = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]])
        self.register_buffer(
            'kernels', torch.stack([sobel, sobel.t()]).unsqueeze(1) / 8,
            persistent=False)  # [2, 1, 3, 3]

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
        grey = frames.float().mean(1).reshape(B * T, 1, H, W)
        grey = F.pad(grey, (1, 1, 1, 1), mode='replicate')
        grad = F.conv2d(grey, self.kernels)  # [B*T, 2, H, W]
        return grad.square().sum(1).add(1e-12).sqrt().view(B, T, H, W)

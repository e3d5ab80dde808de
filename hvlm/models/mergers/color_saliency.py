"""Saliency from colour distinctiveness."""
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class ColorSaliency(nn.Module):
    """Distance of each pixel's colour from its frame's mean colour.

    The global-contrast idea of Achanta et al. (CVPR 2009, frequency-tuned
    saliency): what differs from the frame's dominant colour stands out,
    what matches it is background. Frames should be smoothed first; the
    merger passes frames already averaged down to a few pixels per token.
    """

    def forward(self, frames: Tensor) -> Tensor:
        """Args:
            frames (Tensor): ``[B, C, T, H, W]``.

        Returns:
            Tensor: ``[B, T, H, W]`` Euclidean colour distance.
        """
        if frames.dim() != 5:
            raise ValueError('ColorSaliency expects frames [B, C, T, H, W], '
                             f'got {tuple(frames.shape)}')
        frames = frames.float()
        mean = frames.mean(dim=(3, 4), keepdim=True)  # [B, C, T, 1, 1]
        return (frames - mean).square().sum(1).add(1e-12).sqrt()

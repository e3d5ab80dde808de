"""Cut a clip into tubelets and project each to one token."""
from typing import Sequence, Tuple

import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class TubeletEmbedding(nn.Module):
    """A ``Conv3d`` whose kernel equals its stride.

    Clips whose length or size the tubelet does not divide are zero-padded
    at the end (after normalisation zero is the mean colour), so any input
    size works and no frame is dropped.

    Args:
        in_channels (int): Colour channels.
        embed_dims (int): Channels of the tokens.
        patch_size (Sequence[int]): Tubelet ``(t, h, w)``.
    """

    def __init__(self, in_channels: int, embed_dims: int,
                 patch_size: Sequence[int]) -> None:
        super().__init__()
        patch_size = tuple(patch_size)
        if len(patch_size) != 3 or not all(
                isinstance(p, int) and p > 0 for p in patch_size):
            raise ValueError(f'patch_size={patch_size} must be three positive '
                             'integers (t, h, w)')
        self.patch_size = patch_size
        self.proj = nn.Conv3d(
            in_channels, embed_dims, kernel_size=patch_size,
            stride=patch_size)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int, int]]:
        """Embed ``x [B, C_in, T, H, W]``.

        Returns:
            tuple: tokens ``[B, T0*H0*W0, C]`` and the grid ``(T0, H0, W0)``.
        """
        pads = [(-s) % p for s, p in zip(x.shape[2:], self.patch_size)]
        if any(pads):
            # F.pad lists the last dimension first: (W, H, T).
            x = F.pad(x, (0, pads[2], 0, pads[1], 0, pads[0]))
        x = self.proj(x)  # [B, C, T0, H0, W0]
        grid = tuple(x.shape[2:])
        return x.flatten(2).transpose(1, 2), grid  # [B, T0*H0*W0, C]

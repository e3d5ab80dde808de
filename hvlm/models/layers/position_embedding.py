"""Fixed 3-D sine-cosine position embedding."""
from typing import Sequence

import torch
from torch import Tensor


def _axis_embedding(length: int, num_freqs: int, temperature: float,
                    device: torch.device) -> Tensor:
    """``[length, 2 * num_freqs]`` sines and cosines of one axis."""
    freqs = temperature**(-torch.arange(
        num_freqs, dtype=torch.float32, device=device) / max(num_freqs, 1))
    angles = torch.arange(
        length, dtype=torch.float32,
        device=device)[:, None] * freqs[None, :]  # [length, num_freqs]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_position_embedding_3d(grid: Sequence[int],
                                 embed_dims: int,
                                 temperature: float = 10000.,
                                 device=None) -> Tensor:
    """Position embedding of a ``(T, H, W)`` grid, factorised over the axes.

    Each axis gets the same number of channels and its own sine-cosine code,
    so the embedding exists for any grid size: a model trained at one input
    resolution or clip length runs at another without interpolating a table.
    Channels left over when ``embed_dims`` is not a multiple of 6 are zero.

    Args:
        grid (Sequence[int]): ``(T, H, W)``.
        embed_dims (int): Channels ``C``.
        temperature (float): Longest wavelength.
        device: Where to build it.

    Returns:
        Tensor: ``[T*H*W, C]`` float32, in ``(t, h, w)`` row-major order.
    """
    T, H, W = grid
    num_freqs = embed_dims // 6
    t, h, w = (
        _axis_embedding(n, num_freqs, temperature, device)
        for n in (T, H, W))  # [n, 2 * num_freqs] each
    axis_dims = 2 * num_freqs
    embed = torch.cat([
        t[:, None, None, :].expand(T, H, W, axis_dims),
        h[None, :, None, :].expand(T, H, W, axis_dims),
        w[None, None, :, :].expand(T, H, W, axis_dims),
    ], dim=-1)  # [T, H, W, 3 * axis_dims]
    embed = embed.reshape(T * H * W, 3 * axis_dims)  # [T*H*W, 6 * num_freqs]
    return torch.nn.functional.pad(embed, (0, embed_dims - 3 * axis_dims))

"""Fixed-window pooling of the token grid, the simplest merger."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS
from hvlm.structures.merge_info import MergeInfo, merge_tokens


@MERGERS.register_module()
class SpatialPoolMerger(nn.Module):
    """Merge every ``kernel`` neighbourhood of the ``(T, H, W)`` grid.

    It is the baseline for content-aware mergers: the same interface and the
    same size bookkeeping, but a merge pattern that ignores the content.
    A grid side that the kernel does not divide gets a last, partial cell
    (ceil division); its token averages fewer inputs and ``size`` says how
    many, so proportional attention still weighs it correctly.

    Args:
        kernel (Sequence[int]): ``(t, h, w)`` window merged into one token.
    """

    def __init__(self, kernel: Sequence[int] = (1, 2, 2)) -> None:
        super().__init__()
        kernel = tuple(kernel)
        if len(kernel) != 3 or not all(
                isinstance(k, int) and k > 0 for k in kernel):
            raise ValueError(f'kernel={kernel} must be three positive '
                             'integers (t, h, w)')
        self.kernel = kernel

    def slot_index(self, shape: Tuple[int, int, int],
                   device: torch.device) -> Tuple[Tensor, Tuple[int, ...]]:
        """The output slot of every grid position, in ``(t, h, w)`` order.

        Returns:
            tuple: ``LongTensor [T*H*W]`` and the output grid ``(T', H', W')``.
        """
        out_shape = tuple(-(-s // k) for s, k in zip(shape, self.kernel))
        t, h, w = (
            torch.arange(s, device=device) // k
            for s, k in zip(shape, self.kernel))
        _, H_out, W_out = out_shape
        index = (t[:, None, None] * H_out + h[None, :, None]) * W_out \
            + w[None, None, :]  # [T, H, W]
        return index.flatten(), out_shape  # [T*H*W]

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]],
                size: Optional[Tensor] = None,
                frames: Optional[Tensor] = None,
                attn: Optional[Tensor] = None) -> MergeInfo:
        """Pool the grid.

        Args:
            x (Tensor): ``[B, N, C]`` tokens laid out as ``(T, H, W)``.
            shape (tuple): The grid ``(T, H, W)``; required.
            size (Tensor, optional): ``[B, N]``; ``None`` means all ones.
            frames, attn: Part of the merger contract, unused here.

        Returns:
            MergeInfo: tokens ``[B, T'*H'*W', C]`` on the grid
            ``(T', H', W')``.
        """
        if shape is None:
            raise ValueError('SpatialPoolMerger needs the (T, H, W) grid of '
                             'the tokens, got shape=None (an earlier merger '
                             'produced tokens that no longer form a grid)')
        B, N, _ = x.shape
        T, H, W = shape
        if T * H * W != N:
            raise ValueError(f'shape={tuple(shape)} has {T * H * W} '
                             f'positions but x has N={N} tokens')
        index, out_shape = self.slot_index(tuple(shape), x.device)
        index = index.expand(B, N)  # [B, N]
        num_slots = out_shape[0] * out_shape[1] * out_shape[2]
        merged, merged_size = merge_tokens(x, size, index, num_slots)
        return MergeInfo(
            x=merged, size=merged_size, index=index, shape=out_shape)

    def extra_repr(self) -> str:
        return f'kernel={self.kernel}'

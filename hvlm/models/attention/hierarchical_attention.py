"""Two-level attention: fine tokens inside their window, pooled windows
everywhere else, in one softmax."""
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .base import MultiHeadAttentionBase
from .blockwise import blockwise_attention, memory_key_value, merge_heads


@ATTENTIONS.register_module()
class HierarchicalAttentionBlock(MultiHeadAttentionBase):
    """Local attention within windows (or frames) plus global attention to
    one pooled token per window; the original's default ``hierarchical``.

    The token sequence is cut into windows: one frame (the ``H * W``
    tokens of one time step of ``shape``) when ``window_size`` is None and
    the grid is known, else ``window_size`` consecutive tokens (default
    ``ceil(sqrt(N))``, which balances the two terms of the cost). Each
    window is pooled into one coarse token (the ``size``-weighted mean of
    its keys and values, or their maximum). Every query then attends, in a
    single softmax, to the fine keys of its own window and to the coarse
    tokens of all *other* windows, so the global context flows straight
    back to every fine token, and a query's own window is never counted
    twice. A coarse token carries the ``log`` of its window's total size as
    a bias (proportional attention, Bolya et al., ICLR 2023), so it weighs
    as much as the tokens it summarises; with mean pooling the result is
    exactly full attention when each window's keys and values are equal.
    This is the two-level case of coarse-to-fine attention over a token
    hierarchy (Zhu & Soricut, "H-Transformer-1D", ACL 2021; Chen et al.,
    "RegionViT", ICLR 2022).

    Cost: ``O(N * (w + N / w))`` time, ``O(N)`` memory. ``num_levels=1``,
    ``window_size >= N`` and ``window_size=1`` (mean pooling) are full
    attention.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Add a bias to the query/key/value projection.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout after the output projection.
        window_size (int, optional): Tokens per window; None: one frame of
            ``shape`` (or ``ceil(sqrt(N))`` without a grid).
        pool (str): ``'avg'`` (size-weighted mean) or ``'max'``.
        num_levels (int): 2 for fine + coarse, 1 for plain full attention.
    """

    POOLS = ('avg', 'max')

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 window_size: Optional[int] = None,
                 pool: str = 'avg',
                 num_levels: int = 2) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if window_size is not None and window_size < 1:
            raise ValueError(
                f'window_size={window_size} must be >= 1 or None')
        if pool not in self.POOLS:
            raise ValueError(f'pool={pool!r} is not one of {self.POOLS}')
        if num_levels not in (1, 2):
            raise ValueError(f'num_levels={num_levels} must be 1 or 2')
        self.window_size = window_size
        self.pool = pool
        self.num_levels = num_levels

    def window_of(self, num_tokens: int,
                  shape: Optional[Tuple[int, int, int]]) -> int:
        """Tokens per window for ``num_tokens`` tokens on grid ``shape``."""
        if self.window_size is not None:
            return min(self.window_size, num_tokens)
        if shape is not None:
            T, H, W = shape
            if T * H * W != num_tokens:
                raise ValueError(f'shape={tuple(shape)} has {T * H * W} '
                                 f'tokens, but x has N={num_tokens}')
            return H * W
        return max(1, math.ceil(math.sqrt(num_tokens)))

    def _pool(self, t: Tensor, weight: Tensor, w: int) -> Tensor:
        """Pool ``t [B, h, N, d]`` over windows of ``w`` -> ``[B, h, nb, d]``
        (``weight [B, N]``: token sizes)."""
        B, h, N, d = t.shape
        nb = math.ceil(N / w)
        pad = nb * w - N
        if self.pool == 'avg':
            wt = F.pad(weight, (0, pad)).reshape(B, 1, nb, w, 1)
            t = F.pad(t, (0, 0, 0, pad)).reshape(B, h, nb, w, d)
            return (t * wt).sum(3) / wt.sum(3)  # [B, h, nb, d]
        t = F.pad(t, (0, 0, 0, pad), value=float('-inf'))
        return t.reshape(B, h, nb, w, d).amax(3)  # [B, h, nb, d]

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]`` (time-major if ``shape``).
            shape (tuple, optional): ``(T, H, W)`` grid of the tokens.
            size (Tensor, optional): ``[B, N]`` tokens merged into each.
            memory (Tensor, optional): ``[B, M, C]`` keys/values seen by
                every query (each of size 1).

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        q, k, v, bias = self.project(x, size)  # [B, h, N, d] x 3
        w = N if self.num_levels == 1 else self.window_of(N, shape)
        nb = math.ceil(N / w)

        shared_k = shared_v = shared_bias = shared_owner = None
        if nb > 1:
            weight = x.new_ones(B, N) if size is None else size.to(x.dtype)
            shared_k = self._pool(k, weight, w)  # [B, h, nb, d]
            shared_v = self._pool(v, weight, w)  # [B, h, nb, d]
            total = F.pad(weight, (0, nb * w - N)).reshape(B, nb, w).sum(2)
            shared_bias = total.log()  # [B, nb]
            shared_owner = torch.arange(nb, device=x.device)  # [nb]
        if memory is not None:
            mk, mv = memory_key_value(self.qkv, memory, B,
                                      self.num_heads)  # [B, h, M, d]
            M = memory.shape[1]
            if shared_k is None:
                shared_k, shared_v = mk, mv
                shared_owner = torch.full((M, ), -1, device=x.device)
            else:
                shared_k = torch.cat([mk, shared_k], 2)  # [B, h, M + nb, d]
                shared_v = torch.cat([mv, shared_v], 2)  # [B, h, M + nb, d]
                shared_bias = F.pad(shared_bias, (M, 0))  # [B, M + nb]
                shared_owner = F.pad(shared_owner, (M, 0), value=-1)

        out = blockwise_attention(
            q, k, v, w,
            key_bias=bias,
            shared_k=shared_k,
            shared_v=shared_v,
            shared_bias=shared_bias,
            shared_owner=shared_owner,
            dropout_p=self.attn_drop if self.training else 0.)
        return self.proj_drop(self.proj(merge_heads(out)))  # [B, N, C]

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'window_size={self.window_size}, pool={self.pool!r}, '
                f'num_levels={self.num_levels}')

"""The base of the softmax attentions: checks, projections, head split."""
from typing import Optional, Tuple

import torch.nn as nn
from torch import Tensor

from .blockwise import size_bias, split_heads


class MultiHeadAttentionBase(nn.Module):
    """Projections and checks shared by the softmax attentions.

    One ``qkv`` and one ``proj`` linear with the same names in every
    subclass (``FullAttention`` and the block-sparse ones), so a model
    trained with one loads into another.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        if num_heads <= 0 or embed_dims % num_heads != 0:
            raise ValueError(
                f'embed_dims={embed_dims} must be divisible by '
                f'num_heads={num_heads} (a positive integer)')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = embed_dims // num_heads
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(embed_dims, embed_dims * 3, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)

    def project(self, x: Tensor, size: Optional[Tensor]
                ) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
        """``q, k, v`` (each ``[B, h, N, d]``) and the ``log(size)`` key
        bias (``[B, N]`` or None) of tokens ``x`` ``[B, N, C]``."""
        B, N, C = x.shape
        if C != self.embed_dims:
            raise ValueError(f'x has {C} channels, expected '
                             f'embed_dims={self.embed_dims}')
        bias = size_bias(size, B, N, x.dtype)  # [B, N] or None
        q, k, v = map(
            lambda t: split_heads(t, self.num_heads),
            self.qkv(x).chunk(3, dim=-1))  # each [B, h, N, d]
        return q, k, v, bias

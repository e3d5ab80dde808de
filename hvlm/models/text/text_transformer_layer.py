"""One pre-norm transformer layer for text, optionally reading the video."""
from typing import Optional

import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


class TextTransformerLayer(nn.Module):
    """Self-attention, then (optionally) cross-attention to video tokens,
    then an MLP, each in a pre-norm residual branch (Vaswani et al. 2017,
    "Attention Is All You Need", with the pre-norm placement of Xiong et
    al. 2020).

    The cross-attention takes an additive bias per video token: heads pass
    ``log(size)`` so that a merged token counts as the ``size`` tubelets it
    stands for (proportional attention, Bolya et al. 2023, "Token Merging:
    Your ViT But Faster", Sec. 3), and ``-inf`` for padding.

    Args:
        embed_dims (int): Width ``C`` of text and video tokens.
        num_heads (int): Attention heads; must divide ``embed_dims``.
        mlp_ratio (float): MLP hidden width over ``embed_dims``.
        cross_attention (bool): Whether the layer reads a memory.
        dropout (float): Dropout on attention weights and branch outputs.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 cross_attention: bool = True,
                 dropout: float = 0.) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.dropout = dropout
        self.norm_self = nn.LayerNorm(embed_dims)
        self.qkv = nn.Linear(embed_dims, 3 * embed_dims)
        self.proj_self = nn.Linear(embed_dims, embed_dims)
        self.cross_attention = cross_attention
        if cross_attention:
            self.norm_cross = nn.LayerNorm(embed_dims)
            self.q_cross = nn.Linear(embed_dims, embed_dims)
            self.kv_cross = nn.Linear(embed_dims, 2 * embed_dims)
            self.proj_cross = nn.Linear(embed_dims, embed_dims)
        hidden = int(embed_dims * mlp_ratio)
        self.norm_mlp = nn.LayerNorm(embed_dims)
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(),
            nn.Linear(hidden, embed_dims))
        self.drop = nn.Dropout(dropout)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor,
                bias: Optional[Tensor], causal: bool) -> Tensor:
        q, k, v = (rearrange(t, 'b n (h d) -> b h n d', h=self.num_heads)
                   for t in (q, k, v))  # [B, h, N, d]
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, is_causal=causal and bias is None,
            dropout_p=self.dropout if self.training else 0.)
        return rearrange(out, 'b h n d -> b n (h d)')  # [B, N, C]

    def forward(self,
                x: Tensor,
                self_bias: Optional[Tensor] = None,
                causal: bool = False,
                memory: Optional[Tensor] = None,
                memory_bias: Optional[Tensor] = None) -> Tensor:
        """Args:
            x: ``[B, L, C]`` text tokens.
            self_bias: ``[B, 1, L, L]`` additive self-attention bias
                (padding and, if wanted, causality already in it), or None.
            causal: Causal self-attention when ``self_bias`` is None.
            memory: ``[B, M, C]`` video tokens (needed when the layer has
                cross-attention).
            memory_bias: ``[B, M]`` additive bias per video token.

        Returns:
            ``[B, L, C]``.
        """
        h = self.norm_self(x)
        q, k, v = self.qkv(h).chunk(3, dim=-1)  # 3 x [B, L, C]
        x = x + self.drop(
            self.proj_self(self._attend(q, k, v, self_bias, causal)))
        if self.cross_attention:
            if memory is None:
                raise ValueError('this layer has cross_attention=True and '
                                 'needs memory [B, M, C], got None')
            h = self.norm_cross(x)
            k, v = self.kv_cross(memory).chunk(2, dim=-1)  # 2 x [B, M, C]
            bias = None if memory_bias is None else \
                memory_bias[:, None, None, :].to(x.dtype)  # [B, 1, 1, M]
            x = x + self.drop(
                self.proj_cross(
                    self._attend(self.q_cross(h), k, v, bias, False)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))

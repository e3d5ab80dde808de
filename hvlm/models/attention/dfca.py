"""DFCA: one stream's tokens attend to a second stream's (cross-stream
fusion of :class:`HViT`)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS


@ATTENTIONS.register_module()
class DFCA(nn.Module):
    """Disease-focused cross-attention, a post-norm cross-attention layer.

    Queries are the RGB tokens ``x``; keys and values are the second
    stream's tokens (``memory``: spectral bands, pseudo-NDVI or motion)
    plus ``num_mask_tokens`` learned mask embeddings. The mask embeddings
    give every query a place to put its attention when nothing in the
    second stream is relevant (a learned "no evidence" key), so the stream
    is not forced into every token::

        y   = LN(x + Dropout(CrossAttn(x, [memory; mask])))
        out = LN(y + FFN(y))

    Without ``memory`` the layer is an error: a fusion layer that silently
    passes tokens through would hide a missing stream.

    Args:
        embed_dims (int): Channels ``C`` of both streams.
        num_heads (int): Heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias of the q/k/v projections.
        attn_drop (float): Dropout on attention weights.
        proj_drop (float): Dropout after the output projection and FFN.
        num_mask_tokens (int): Learned mask embeddings appended to the keys.
        ffn_ratio (float): Hidden width of the FFN relative to ``C``.
    """
    # Not a self-attention: it needs the second stream (``memory``), so it
    # cannot stand in for the attention of a backbone's blocks.
    cross_stream = True

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 num_mask_tokens: int = 1,
                 ffn_ratio: float = 4.0) -> None:
        super().__init__()
        if num_heads <= 0 or embed_dims % num_heads:
            raise ValueError(f'embed_dims={embed_dims} must be divisible by '
                             f'num_heads={num_heads}')
        if num_mask_tokens < 0:
            raise ValueError(f'num_mask_tokens={num_mask_tokens} must be '
                             '>= 0')
        self.embed_dims, self.num_heads = embed_dims, num_heads
        self.attn_drop = attn_drop
        self.q = nn.Linear(embed_dims, embed_dims, bias=qkv_bias)
        self.kv = nn.Linear(embed_dims, 2 * embed_dims, bias=qkv_bias)
        self.proj = nn.Linear(embed_dims, embed_dims)
        self.proj_drop = nn.Dropout(proj_drop)
        self.mask_embed = nn.Parameter(
            torch.zeros(1, num_mask_tokens, embed_dims))
        nn.init.trunc_normal_(self.mask_embed, std=.02)
        self.norm1 = nn.LayerNorm(embed_dims)
        hidden = int(embed_dims * ffn_ratio)
        self.ffn = nn.Sequential(
            nn.Linear(embed_dims, hidden), nn.GELU(), nn.Dropout(proj_drop),
            nn.Linear(hidden, embed_dims), nn.Dropout(proj_drop))
        self.norm2 = nn.LayerNorm(embed_dims)

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """``x [B, N, C]`` attends to ``memory [B, M, C]`` -> ``[B, N, C]``.

        ``shape`` and ``size`` are accepted for the family's interface and
        unused (the fusion runs before any merge).
        """
        if memory is None:
            raise ValueError('DFCA needs the second stream\'s tokens as '
                             '`memory`')
        B, N, C = x.shape
        if memory.dim() != 3 or memory.shape[0] != B or memory.shape[2] != C:
            raise ValueError(f'memory has shape {tuple(memory.shape)}, '
                             f'expected [B={B}, M, C={C}]')
        keys = torch.cat([memory, self.mask_embed.expand(B, -1, -1)],
                         dim=1)  # [B, M + m, C]
        h, d = self.num_heads, C // self.num_heads
        q = self.q(x).reshape(B, N, h, d).transpose(1, 2)  # [B, h, N, d]
        k, v = self.kv(keys).reshape(B, -1, 2, h, d).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.)
        out = out.transpose(1, 2).reshape(B, N, C)  # [B, N, C]
        x = self.norm1(x + self.proj_drop(self.proj(out)))
        return self.norm2(x + self.ffn(x))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'num_mask_tokens={self.mask_embed.shape[1]}')

"""Longformer-style attention: a local window plus a few global tokens,
computed exactly without an ``N x N`` mask."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .base import MultiHeadAttentionBase
from .blockwise import blockwise_attention, memory_key_value, merge_heads
from .local_global_window import window_shared_attention
from .split_softmax import MASKED, split_softmax_supported


@ATTENTIONS.register_module()
class LocalGlobalAttention(MultiHeadAttentionBase):
    """Sliding-window (or blocked-window) attention plus global tokens.

    Beltagy et al., "Longformer: The Long-Document Transformer" (2020):
    most tokens only need their neighbourhood, and a few *global* tokens,
    which attend to every token and are attended to by every token, carry
    information across the whole sequence in one layer. Video has no [CLS]
    token, so the global tokens here are ``num_global`` positions spread
    evenly over the clip (token ``floor((g + 1/2) * N / G)`` for
    ``g < G``): every part of the video has a nearby summary.

    * ``sliding=True``: token ``i`` sees the tokens ``j`` with
      ``|i - j| <= window_size // 2`` (Longformer's window).
    * ``sliding=False``: the sequence is cut into blocks of ``window_size``
      tokens and each token sees its block (cheaper: no overlap).

    Plus, for every token, the global tokens (each counted once). Cost:
    ``O(N * (window_size + G))`` time and memory. ``num_global=0`` with a
    window covering the sequence, or ``num_global >= N``, is full attention.
    With ``size`` every key gets the ``log(size)`` bias of proportional
    attention; ``memory`` tokens are extra keys for every query.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Add a bias to the query/key/value projection.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout after the output projection.
        window_size (int): Local window width (>= 1).
        num_global (int): Global tokens (>= 0; capped at ``N``).
        sliding (bool): Sliding window (True) or blocked windows (False).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 window_size: int = 64,
                 num_global: int = 16,
                 sliding: bool = True) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if window_size < 1:
            raise ValueError(f'window_size={window_size} must be >= 1')
        if num_global < 0:
            raise ValueError(f'num_global={num_global} must be >= 0')
        self.window_size = window_size
        self.num_global = num_global
        self.sliding = sliding

    @staticmethod
    def global_positions(num_tokens: int, num_global: int,
                         device: Optional[torch.device] = None) -> Tensor:
        """Indices ``[G]`` of the global tokens among ``num_tokens``."""
        G = min(num_global, num_tokens)
        g = torch.arange(G, device=device)
        return torch.div((2 * g + 1) * num_tokens, 2 * G,
                         rounding_mode='floor')  # [G], strictly increasing

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)`` grid; not needed here.
            size (Tensor, optional): ``[B, N]`` tokens merged into each.
            memory (Tensor, optional): ``[B, M, C]`` keys/values seen by
                every query (each of size 1).

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        q, k, v, bias = self.project(x, size)  # [B, h, N, d] x 3
        dropout_p = self.attn_drop if self.training else 0.

        glob = self.global_positions(N, self.num_global, x.device)  # [G]
        is_global = torch.zeros(N, dtype=torch.bool, device=x.device)
        is_global[glob] = True
        shared_k, shared_v = k[:, :, glob], v[:, :, glob]  # [B, h, G, d]
        shared_bias = None if bias is None else bias[:, glob]  # [B, G]
        all_k, all_v, all_bias = k, v, bias  # keys of the global queries
        if memory is not None:
            mk, mv = memory_key_value(self.qkv, memory, B,
                                      self.num_heads)  # [B, h, M, d]
            M = memory.shape[1]
            shared_k = torch.cat([mk, shared_k], 2)  # [B, h, M + G, d]
            shared_v = torch.cat([mv, shared_v], 2)  # [B, h, M + G, d]
            all_k = torch.cat([mk, k], 2)  # [B, h, M + N, d]
            all_v = torch.cat([mv, v], 2)  # [B, h, M + N, d]
            if bias is not None:
                shared_bias = F.pad(shared_bias, (M, 0))  # [B, M + G]
                all_bias = F.pad(bias, (M, 0))  # [B, M + N]
        if shared_k.shape[2] == 0:
            shared_k = shared_v = None

        if self.sliding:
            radius = min(self.window_size // 2, N)
            block, window_radius = max(radius, 1), radius
        else:
            block, window_radius = min(self.window_size, N), None
        if split_softmax_supported(q, dropout_p, bias, shared_bias):
            # Fused window calls merged by log-sum-exp: no copies of the
            # neighbouring blocks' keys are made or kept for backward.
            # Dropout and biases with gradients take the blockwise path.
            local_bias = q.new_zeros(B, N) if bias is None else \
                bias.to(q.dtype)
            local_bias = local_bias.masked_fill(is_global[None], MASKED)
            out = window_shared_attention(
                q, k, v, block, local_bias,
                radius=window_radius,
                shared_k=shared_k,
                shared_v=shared_v,
                shared_bias=shared_bias)  # [B, h, N, d]
        else:
            out = blockwise_attention(
                q, k, v, block,
                radius=window_radius,
                key_bias=bias,
                local_exclude=is_global,
                shared_k=shared_k,
                shared_v=shared_v,
                shared_bias=shared_bias,
                dropout_p=dropout_p)  # [B, h, N, d]

        if len(glob):
            # Global queries attend to every key: [B, h, G, M + N] logits.
            mask = None if all_bias is None else all_bias[:, None, None, :]
            glob_out = F.scaled_dot_product_attention(
                q[:, :, glob], all_k, all_v, attn_mask=mask,
                dropout_p=dropout_p)  # [B, h, G, d]
            out = out.index_copy(2, glob, glob_out)  # [B, h, N, d]
        return self.proj_drop(self.proj(merge_heads(out)))  # [B, N, C]

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'window_size={self.window_size}, '
                f'num_global={self.num_global}, sliding={self.sliding}')

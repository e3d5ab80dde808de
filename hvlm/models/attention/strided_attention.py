"""Local windows plus every ``stride``-th token (a Sparse Transformer
pattern), computed exactly without an ``N x N`` mask."""
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
class StridedAttention(MultiHeadAttentionBase):
    """Each query attends to the tokens of its window and to every
    ``stride``-th token of the sequence, each key counted once.

    The two-part pattern of Child et al., "Generating Long Sequences with
    Sparse Transformers" (2019), made non-causal for video and merged into
    one softmax: the window (non-overlapping blocks of ``window_size``
    consecutive tokens) carries fine local detail, the strided tokens
    (positions ``0, stride, 2 * stride, ...``) a regular subsample of the
    whole clip. This is the original HierarchicalVLM's ``sparse_attention``
    setting (``stride: 4``, ``window_size: 64``). A query sees
    ``window_size + N / stride`` keys, so the cost is ``O(N^2 / stride)``
    time and ``O(N)`` memory. ``stride=1`` or ``window_size >= N`` is full
    attention. On CPU the strided keys are attended by one fused call for
    all queries and merged with the windows through the two parts'
    log-sum-exps (:func:`~.local_global_window.window_shared_attention`),
    rather than copied next to every window.

    Strided tokens inside the query's own window are taken out of the window
    part, so no key is counted twice. With ``size`` every key gets the
    ``log(size)`` bias of proportional attention; ``memory`` tokens are keys
    seen by every query.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Add a bias to the query/key/value projection.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout after the output projection.
        stride (int): Distance between strided tokens (>= 1).
        window_size (int): Tokens per local window (>= 1).
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 stride: int = 4,
                 window_size: int = 64) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if stride < 1:
            raise ValueError(f'stride={stride} must be >= 1')
        if window_size < 1:
            raise ValueError(f'window_size={window_size} must be >= 1')
        self.stride = stride
        self.window_size = window_size

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)`` grid; not needed here
                (windows run along the token order, which is time-major).
            size (Tensor, optional): ``[B, N]`` tokens merged into each.
            memory (Tensor, optional): ``[B, M, C]`` keys/values seen by
                every query (each of size 1).

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        q, k, v, bias = self.project(x, size)  # [B, h, N, d] x 3

        positions = torch.arange(N, device=x.device)
        strided = positions[::self.stride]  # [S]
        shared_k, shared_v = k[:, :, strided], v[:, :, strided]  # [B,h,S,d]
        shared_bias = None if bias is None else bias[:, strided]  # [B, S]
        if memory is not None:
            mk, mv = memory_key_value(self.qkv, memory, B,
                                      self.num_heads)  # [B, h, M, d]
            shared_k = torch.cat([mk, shared_k], 2)  # [B, h, M + S, d]
            shared_v = torch.cat([mv, shared_v], 2)  # [B, h, M + S, d]
            if shared_bias is not None:
                shared_bias = F.pad(shared_bias, (memory.shape[1], 0))

        window = min(self.window_size, N)
        is_strided = positions % self.stride == 0  # [N]
        dropout_p = self.attn_drop if self.training else 0.
        if split_softmax_supported(q, dropout_p, bias):
            # One fused attention against the shared keys, one over the
            # windows, merged through their log-sum-exps: exact, and no
            # copy of the N / stride shared keys per window.
            local_bias = (q.new_zeros(B, N) if bias is None else bias)
            local_bias = local_bias.masked_fill(is_strided[None], MASKED)
            out = window_shared_attention(
                q, k, v, window, local_bias,
                shared_k=shared_k, shared_v=shared_v,
                shared_bias=shared_bias)  # [B, h, N, d]
        else:
            out = blockwise_attention(
                q, k, v, window,
                key_bias=bias,
                local_exclude=is_strided,
                shared_k=shared_k,
                shared_v=shared_v,
                shared_bias=shared_bias,
                dropout_p=dropout_p)  # [B, h, N, d]
        return self.proj_drop(self.proj(merge_heads(out)))  # [B, N, C]

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'stride={self.stride}, window_size={self.window_size}')

"""Global multi-head self-attention, the baseline every other mechanism is
measured against."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .base import MultiHeadAttentionBase


@ATTENTIONS.register_module()
class FullAttention(MultiHeadAttentionBase):
    """Every token attends to every token (and to an optional memory).

    Runs on :func:`torch.nn.functional.scaled_dot_product_attention` so that
    the fused kernels are used whenever nothing forces the math path: with
    ``size=None`` (and no attention dropout) no mask is passed at all.

    Proportional attention: after merging, one token stands for ``size``
    original tokens. Adding ``log(size)`` to every logit of that key makes
    the softmax treat it as ``size`` identical keys, so merging does not
    shrink a region's share of attention. The bias depends on the key only,
    so it is passed as a broadcastable ``[B, 1, 1, M + N]`` tensor rather
    than an ``N x N`` mask.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Add a bias to the query/key/value projection.
        attn_drop (float): Dropout on the attention weights (training only).
        proj_drop (float): Dropout after the output projection.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        # Set by a token merger that matches on keys (ToMe): the forward
        # then leaves the head-averaged keys ``[B, N, d]`` in ``last_keys``.
        self.keep_keys = False
        self.last_keys: Optional[Tensor] = None

    def _key_value_of(self, memory: Tensor) -> Tuple[Tensor, Tensor]:
        """Project memory tokens with the key/value rows of ``qkv`` only,
        which spares computing queries nobody reads."""
        weight = self.qkv.weight[self.embed_dims:]  # [2C, C]
        bias = None if self.qkv.bias is None else self.qkv.bias[
            self.embed_dims:]
        B, M, _ = memory.shape
        kv = F.linear(memory, weight, bias)  # [B, M, 2C]
        kv = kv.reshape(B, M, 2, self.num_heads, self.head_dims)
        kv = kv.permute(2, 0, 3, 1, 4)  # [2, B, heads, M, d]
        return kv[0], kv[1]

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)`` grid of the tokens; full
                attention does not need it.
            size (Tensor, optional): ``[B, N]`` number of original tokens each
                token stands for; ``None`` means all ones.
            memory (Tensor, optional): ``[B, M, C]`` extra keys/values placed
                before the tokens (each counts as size 1).

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        if C != self.embed_dims:
            raise ValueError(f'x has {C} channels, expected '
                             f'embed_dims={self.embed_dims}')
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dims)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, heads, N, d]
        if self.keep_keys:
            self.last_keys = k.detach().mean(1)  # [B, N, d]

        num_memory = 0
        if memory is not None:
            if memory.dim() != 3 or memory.shape[0] != B or memory.shape[
                    2] != C:
                raise ValueError(f'memory has shape {tuple(memory.shape)}, '
                                 f'expected [B={B}, M, C={C}]')
            num_memory = memory.shape[1]
            mem_k, mem_v = self._key_value_of(memory)
            k = torch.cat([mem_k, k], dim=2)  # [B, heads, M + N, d]
            v = torch.cat([mem_v, v], dim=2)  # [B, heads, M + N, d]

        bias = None
        if size is not None:
            if tuple(size.shape) != (B, N):
                raise ValueError(f'size has shape {tuple(size.shape)}, '
                                 f'expected [B, N] = [{B}, {N}]')
            bias = size.to(q.dtype).log()  # [B, N]
            if num_memory:
                bias = F.pad(bias, (num_memory, 0))  # [B, M + N], log(1) = 0
            bias = bias[:, None, None, :]  # [B, 1, 1, M + N]

        out = F.scaled_dot_product_attention(
            q, k, v,
            attn_mask=bias,
            dropout_p=self.attn_drop if self.training else 0.)
        out = out.transpose(1, 2).reshape(B, N, C)  # [B, N, C]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return f'embed_dims={self.embed_dims}, num_heads={self.num_heads}'


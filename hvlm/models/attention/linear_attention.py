"""Kernelised linear attention, optionally mixed with exact softmax
attention inside local windows."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .feature_maps import (linear_kernel, normalised_linear_attention,
                           project_heads)
from .full_attention import FullAttention


def windowed_softmax_attention(q: Tensor,
                               k: Tensor,
                               v: Tensor,
                               window: int,
                               size: Optional[Tensor] = None,
                               dropout_p: float = 0.) -> Tensor:
    """Exact softmax attention inside consecutive, non-overlapping windows
    of ``window`` tokens, without any ``N x N`` mask.

    Tokens are padded to a multiple of ``window`` and folded into the batch
    axis (``[B, h, N, d] -> [B, h * nb, w, d]``), so SDPA sees ``nb``
    independent ``w x w`` problems: ``O(N w)`` time and memory. Padded keys
    get a ``-inf`` bias (a ``[.., 1, w]`` row per window, broadcast over the
    queries); padded queries are cut off afterwards.

    Args:
        q, k, v (Tensor): ``[B, h, N, d]``.
        window (int): Tokens per window.
        size (Tensor, optional): ``[B, N]`` key sizes; adds ``log(size)``.
        dropout_p (float): Dropout on the attention weights.

    Returns:
        Tensor: ``[B, h, N, d]``.
    """
    B, h, N, d = q.shape
    nb = -(-N // window)
    pad = nb * window - N
    if pad:
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    bias = None
    if size is not None or pad:
        key_bias = q.new_zeros(B, N) if size is None else size.to(
            q.dtype).log()  # [B, N]
        key_bias = F.pad(key_bias, (0, pad), value=float('-inf'))
        bias = key_bias.view(B, 1, nb, 1, window).expand(
            B, h, nb, 1, window).reshape(B, h * nb, 1, window)
    q, k, v = (t.reshape(B, h * nb, window, d)
               for t in (q, k, v))  # each [B, h * nb, w, d]
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias, dropout_p=dropout_p)  # [B, h * nb, w, d]
    return out.reshape(B, h, nb * window, d)[:, :, :N]  # [B, h, N, d]


@ATTENTIONS.register_module()
class LinearAttentionBlock(FullAttention):
    """Linear attention (Katharopoulos et al., "Transformers are RNNs:
    Fast Autoregressive Transformers with Linear Attention", ICML 2020),
    with an optional exact local branch.

    The softmax similarity is replaced by ``phi(q) . phi(k)`` for a
    non-negative feature map ``phi`` (``kernel_type``: ``'elu'`` for
    ``elu + 1``, the paper's and the original config's choice, or
    ``'relu'``). Associativity then gives ``O(N d^2)`` cost. Linear
    attention is smooth and global: good at "what happens in the whole
    video", weak at sharp, local matches. ``local_window`` adds exact
    softmax attention inside consecutive windows of that many tokens (in the
    token order, i.e. within the same frames for a ``(T, H, W)`` grid when
    the window is a multiple of ``H * W``) and mixes the two per head with a
    learned gate, ``g * local + (1 - g) * linear``, ``g = sigmoid(w)``
    starting at 0.5 - the split of Longformer-like local detail and a cheap
    global summary.

    Proportional attention: a key of size ``s`` has its features multiplied
    by ``s`` (exactly ``s`` identical keys) in the linear branch and gets
    ``log s`` added to its logits in the local branch. ``memory`` tokens
    join the linear branch only (they have no position in the windows).
    ``attn_drop`` drops keys (DropKey) in the linear branch and is SDPA's
    dropout in the local branch.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias of the qkv projection.
        attn_drop (float): See above.
        proj_drop (float): Dropout after the output projection.
        kernel_type (str): ``'elu'`` or ``'relu'``.
        local_window (int, optional): Window of the exact local branch;
            ``None`` for linear attention alone.
        eps (float): Guards the normaliser of the linear branch.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 kernel_type: str = 'elu',
                 local_window: Optional[int] = None,
                 eps: float = 1e-6) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        self.kernel_type = kernel_type
        self.feature_map = linear_kernel(kernel_type)
        if local_window is not None and local_window <= 0:
            raise ValueError(f'local_window={local_window} must be None or '
                             'a positive integer')
        self.local_window = local_window
        self.eps = eps
        if local_window is not None:
            self.local_gate = nn.Parameter(torch.zeros(num_heads))

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)``; windows follow the token
                order, so it is not needed.
            size (Tensor, optional): ``[B, N]`` tubelets per token.
            memory (Tensor, optional): ``[B, M, C]`` extra keys/values.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        q, k, v, key_size = project_heads(self, x, size, memory)
        # Sums over all keys lose digits in bf16/fp16: float32 here.
        with torch.autocast(device_type=x.device.type, enabled=False):
            qf, kf, vf = q.float(), k.float(), v.float()
            q_feats = self.feature_map(qf)  # [B, h, N, d]
            k_feats = self.feature_map(kf)  # [B, h, M + N, d]
            if key_size is not None:
                k_feats = k_feats * key_size.float()[:, None, :, None]
            if self.training and self.attn_drop > 0:
                keep = torch.rand(
                    k_feats.shape[:-1], device=k_feats.device
                ) >= self.attn_drop  # [B, h, M + N]
                k_feats = k_feats * keep.unsqueeze(-1)
            out = normalised_linear_attention(
                q_feats, k_feats, vf, eps=self.eps)  # [B, h, N, d]
        out = out.to(q.dtype)
        if self.local_window is not None:
            num_memory = k.shape[2] - N
            local = windowed_softmax_attention(
                q, k[:, :, num_memory:], v[:, :, num_memory:],
                self.local_window, size,
                self.attn_drop if self.training else 0.)  # [B, h, N, d]
            gate = self.local_gate.sigmoid().to(q.dtype)[:, None, None]
            out = gate * local + (1 - gate) * out  # [B, h, N, d]
        out = out.to(x.dtype).transpose(1, 2).reshape(B, N, C)  # [B, N, C]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, kernel_type={self.kernel_type!r}, '
                f'local_window={self.local_window}')

"""Exact sparse attention patterns from block reshapes and SDPA.

Window, stride and local+global patterns are sparse in a structured way:
every query needs (a) the keys of a few neighbouring blocks and (b) a set of
keys shared by all queries (strided tokens, global tokens, pooled windows,
memory). Reshaping the sequence into blocks of ``block_size`` tokens turns
(a) into a batch of small dense attentions, and appending (b) to every
block's keys keeps the whole pattern inside *one* softmax, so the result is
exactly the masked dense attention, computed by
:func:`torch.nn.functional.scaled_dot_product_attention` on 4-D tensors
(a 5-D layout silently falls back to a slow path). No ``N x N`` matrix or
mask exists, in forward or backward: masks are ``[blocks, block, keys]``,
which is linear in ``N``.

Shared keys are copied next to every block's own keys. To keep that copy
linear in ``N`` the blocks are processed in chunks whose copies are no
larger than the local keys, and each chunk is recomputed in the backward
pass (non-reentrant checkpointing) instead of being stored.

Public API (also used by other attentions, keep it small):

* :func:`split_heads` / :func:`merge_heads`: ``[B, N, C] <-> [B, h, N, d]``.
* :func:`size_bias`: the ``log(size)`` key bias of proportional attention
  (Bolya et al., "Token Merging: Your ViT but Faster", ICLR 2023), checked.
* :func:`memory_key_value`: keys/values of extra ``memory`` tokens from
  the key/value rows of a fused ``qkv`` projection, checked.
* :func:`blockwise_attention`: the block-sparse attention itself.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

__all__ = [
    'split_heads', 'merge_heads', 'size_bias', 'memory_key_value',
    'blockwise_attention'
]


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """``[B, N, h * d]`` -> ``[B, h, N, d]``."""
    B, N, C = x.shape
    return x.reshape(B, N, num_heads, C // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``[B, h, N, d]`` -> ``[B, N, h * d]``."""
    B, h, N, d = x.shape
    return x.transpose(1, 2).reshape(B, N, h * d)


def size_bias(size: Optional[Tensor], batch: int, num_tokens: int,
              dtype: torch.dtype) -> Optional[Tensor]:
    """Key bias ``log(size)`` ``[B, N]`` so that a key standing for ``s``
    merged tokens weighs like ``s`` identical keys; ``None`` stays ``None``.

    Raises:
        ValueError: if ``size`` is not ``[batch, num_tokens]``.
    """
    if size is None:
        return None
    if tuple(size.shape) != (batch, num_tokens):
        raise ValueError(f'size has shape {tuple(size.shape)}, expected '
                         f'[B, N] = [{batch}, {num_tokens}]')
    return size.to(dtype).log()


def memory_key_value(qkv: nn.Linear, memory: Tensor, batch: int,
                     num_heads: int) -> Tuple[Tensor, Tensor]:
    """Keys and values ``[B, h, M, d]`` of ``memory [B, M, C]``, projected
    with the key/value rows of the fused ``qkv`` linear only (queries of
    memory tokens are never read).

    Raises:
        ValueError: if ``memory`` is not ``[batch, M, C]``.
    """
    C = qkv.in_features
    if memory.dim() != 3 or memory.shape[0] != batch or memory.shape[2] != C:
        raise ValueError(f'memory has shape {tuple(memory.shape)}, '
                         f'expected [B={batch}, M, C={C}]')
    bias = None if qkv.bias is None else qkv.bias[C:]
    kv = F.linear(memory, qkv.weight[C:], bias)  # [B, M, 2C]
    k, v = kv.chunk(2, dim=-1)  # each [B, M, C]
    return split_heads(k, num_heads), split_heads(v, num_heads)


def _block_chunk(q: Tensor, k: Tensor, v: Tensor, bias: Optional[Tensor],
                 shared_k: Optional[Tensor], shared_v: Optional[Tensor],
                 shared_bias: Optional[Tensor], dropout_p: float) -> Tensor:
    """One chunk of ``c`` blocks: SDPA over [local keys; shared keys].

    Shapes: ``q [B, h, c, w, d]``, ``k/v [B, h, c, L, d]``, ``bias``
    ``[B, c, w or 1, L]`` or None, ``shared_k/v [B, h, S, d]``,
    ``shared_bias [B, c, 1, S]`` or None. Returns ``[B, h, c, w, d]``.
    """
    B, h, c, w, d = q.shape
    if shared_k is not None:
        S = shared_k.shape[2]
        k = torch.cat([k, shared_k[:, :, None].expand(B, h, c, S, d)],
                      dim=3)  # [B, h, c, L + S, d]
        v = torch.cat([v, shared_v[:, :, None].expand(B, h, c, S, d)],
                      dim=3)  # [B, h, c, L + S, d]
        if bias is not None or shared_bias is not None:
            L = k.shape[3] - S
            if bias is None:
                bias = q.new_zeros(B, c, 1, L)
            if shared_bias is None:
                shared_bias = q.new_zeros(B, c, 1, S)
            rows = max(bias.shape[2], shared_bias.shape[2])
            bias = torch.cat([
                bias.expand(B, c, rows, L),
                shared_bias.expand(B, c, rows, S)
            ], dim=3)  # [B, c, rows, L + S]
    K = k.shape[3]
    # 4-D layout: (batch x block) as the batch, heads as heads.
    q4 = q.transpose(1, 2).reshape(B * c, h, w, d)  # [B*c, h, w, d]
    k4 = k.transpose(1, 2).reshape(B * c, h, K, d)  # [B*c, h, K, d]
    v4 = v.transpose(1, 2).reshape(B * c, h, K, d)  # [B*c, h, K, d]
    mask = None
    if bias is not None:
        mask = bias.reshape(B * c, 1, bias.shape[2], K)  # [B*c, 1, w|1, K]
    out = F.scaled_dot_product_attention(
        q4, k4, v4, attn_mask=mask, dropout_p=dropout_p)  # [B*c, h, w, d]
    return out.reshape(B, c, h, w, d).transpose(1, 2)  # [B, h, c, w, d]


def blockwise_attention(q: Tensor,
                        k: Tensor,
                        v: Tensor,
                        block_size: int,
                        *,
                        radius: Optional[int] = None,
                        key_bias: Optional[Tensor] = None,
                        local_exclude: Optional[Tensor] = None,
                        shared_k: Optional[Tensor] = None,
                        shared_v: Optional[Tensor] = None,
                        shared_bias: Optional[Tensor] = None,
                        shared_owner: Optional[Tensor] = None,
                        dropout_p: float = 0.) -> Tensor:
    """Local (blocked or sliding-window) attention plus shared keys, exact.

    Query ``i`` (block ``b = i // block_size``) attends, in one softmax, to

    * local keys: with ``radius=None`` every key of its own block; with an
      integer ``radius <= block_size`` every key ``j`` with
      ``|i - j| <= radius`` (a sliding window, from blocks ``b-1..b+1``);
      keys flagged in ``local_exclude`` are left out of this part (use it
      when such keys are also among the shared keys, so each counts once);
    * every shared key ``s`` except those whose ``shared_owner[s] == b``.

    Args:
        q, k, v (Tensor): ``[B, h, N, d]``.
        block_size (int): Tokens per block (``N`` is padded to a multiple;
            padding is never attended to).
        radius (int, optional): Sliding-window half width, at most
            ``block_size``; ``None`` for blocked windows.
        key_bias (Tensor, optional): ``[B, N]`` added to the logits of each
            local key (e.g. :func:`size_bias`).
        local_exclude (Tensor, optional): ``[N]`` bool.
        shared_k, shared_v (Tensor, optional): ``[B, h, S, d]``.
        shared_bias (Tensor, optional): ``[B, S]`` logit bias of shared keys.
        shared_owner (Tensor, optional): ``[S]`` long, the block that must
            not see each shared key (``-1``: seen by every block).
        dropout_p (float): Attention dropout probability.

    Returns:
        Tensor: ``[B, h, N, d]``.
    """
    B, h, N, d = q.shape
    w = int(block_size)
    if w < 1:
        raise ValueError(f'block_size={block_size} must be >= 1')
    if radius is not None and not 0 <= radius <= w:
        raise ValueError(f'radius={radius} must lie in [0, block_size={w}]')
    if (shared_k is None) != (shared_v is None):
        raise ValueError('shared_k and shared_v must be given together')
    nb = math.ceil(N / w)
    pad = nb * w - N
    dtype, device = q.dtype, q.device
    neg_inf = float('-inf')

    need_bias = (key_bias is not None or local_exclude is not None
                 or pad > 0 or radius is not None)
    kb = None
    if need_bias:
        kb = q.new_zeros(B, N) if key_bias is None else key_bias.to(dtype)
        if local_exclude is not None:
            kb = kb.masked_fill(local_exclude.to(device)[None], neg_inf)
        kb = F.pad(kb, (0, pad), value=neg_inf)  # [B, nb*w]

    q = F.pad(q, (0, 0, 0, pad)).reshape(B, h, nb, w, d)  # [B, h, nb, w, d]
    k = F.pad(k, (0, 0, 0, pad))  # [B, h, nb*w, d]
    v = F.pad(v, (0, 0, 0, pad))  # [B, h, nb*w, d]
    if radius is None:
        k_loc = k.reshape(B, h, nb, w, d)  # [B, h, nb, w, d]
        v_loc = v.reshape(B, h, nb, w, d)  # [B, h, nb, w, d]
        bias = None if kb is None else kb.reshape(B, nb, 1, w)
    else:
        # Keys of blocks b-1, b, b+1 next to block b: [B, h, nb, 3w, d].
        def neighbours(t: Tensor) -> Tensor:
            t = F.pad(t, (0, 0, w, w)).reshape(B, h, nb + 2, w, d)
            return torch.cat([t[:, :, :-2], t[:, :, 1:-1], t[:, :, 2:]], 3)

        k_loc, v_loc = neighbours(k), neighbours(v)
        kbp = F.pad(kb, (w, w), value=neg_inf).reshape(B, nb + 2, w)
        kb3 = torch.cat([kbp[:, :-2], kbp[:, 1:-1], kbp[:, 2:]],
                        2)  # [B, nb, 3w]
        # Query a of block b sits at b*w + a, key c at (b-1)*w + c.
        offset = torch.arange(w, device=device)[:, None] + w - torch.arange(
            3 * w, device=device)[None]  # [w, 3w]
        inside = offset.abs() <= radius  # [w, 3w]
        # Padded queries may see anything (their output is dropped); this
        # keeps every softmax row non-empty, hence NaN-free gradients.
        pad_query = (torch.arange(nb * w, device=device) >= N).reshape(
            nb, w, 1)  # [nb, w, 1]
        allowed = inside[None] | pad_query  # [nb, w, 3w]
        bias = kb3[:, :, None, :].masked_fill(
            ~allowed[None], neg_inf)  # [B, nb, w, 3w]
        bias = torch.where(pad_query[None], torch.zeros_like(bias), bias)

    if shared_k is not None:
        S = shared_k.shape[2]
        sb = None
        if shared_bias is not None or shared_owner is not None:
            sb = q.new_zeros(B, S) if shared_bias is None else \
                shared_bias.to(dtype)
            sb = sb[:, None, None, :].expand(B, nb, 1, S)  # [B, nb, 1, S]
            if shared_owner is not None:
                owned = shared_owner.to(device)[None] == torch.arange(
                    nb, device=device)[:, None]  # [nb, S]
                sb = sb.masked_fill(owned[None, :, None, :], neg_inf)
        if bias is None and sb is not None:
            bias = q.new_zeros(B, nb, 1, k_loc.shape[3])
        # Copies of the shared keys per chunk stay within the local keys'
        # size, so memory stays linear in N.
        L = k_loc.shape[3]
        chunk = max(1, math.ceil(nb * L / (L + S)))
    else:
        S, sb, chunk = 0, None, nb

    outs = []
    recompute = torch.is_grad_enabled() and chunk < nb
    for start in range(0, nb, chunk):
        sl = slice(start, start + chunk)
        args = (q[:, :, sl], k_loc[:, :, sl], v_loc[:, :, sl],
                None if bias is None else bias[:, sl], shared_k, shared_v,
                None if sb is None else sb[:, sl], dropout_p)
        if recompute:
            outs.append(checkpoint(_block_chunk, *args, use_reentrant=False))
        else:
            outs.append(_block_chunk(*args))
    out = torch.cat(outs, dim=2)  # [B, h, nb, w, d]
    return out.reshape(B, h, nb * w, d)[:, :, :N]  # [B, h, N, d]

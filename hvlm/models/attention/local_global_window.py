"""Sliding- or blocked-window attention plus shared keys as one exact
softmax, from fused attention calls merged through their log-sum-exps.

:func:`~.blockwise.blockwise_attention` gives every block of queries a copy
of the keys of its neighbouring blocks (``3x`` the keys and values for a
sliding window) and of the shared keys, and autograd keeps those copies,
their gradients and the masks. Here each query block instead attends, in
separate fused calls, to

* the shared keys (global tokens, memory): one call for all queries;
* the keys of block ``b + o`` for each offset ``o`` of the window
  (``0`` for blocked windows; ``-1, 0, 1`` for a sliding window of radius
  ``<= block``): one call per offset on *views* of the blocks, with a
  ``[block, block]`` mask pattern where the window cuts the block;

and the parts are merged exactly: with ``l_p`` a part's log-sum-exp and
``o_p`` its normalised output, ``o = sum_p exp(l_p - l) o_p`` for
``l = logsumexp_p l_p`` (see :mod:`.split_softmax`). The backward pass is
one fused backward call per part given the *merged* output and
log-sum-exp, so that each part's probabilities are the union's. Nothing
but ``q, k, v``, the output, ``l`` and ``[N, block]`` masks is saved, and
no key or value is copied.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .split_softmax import MASKED, _flash, _flash_backward

__all__ = ['window_shared_attention']


def _blocks(t: Tensor, block: int) -> Tensor:
    """``[h, Np, *]`` -> ``[Np / block, h, block, *]``, a view."""
    h, Np = t.shape[:2]
    return t.unflatten(1, (Np // block, block)).transpose(0, 1)


def _offsets(block: int, radius: Optional[int]) -> List[Tuple[int, Tensor]]:
    """The block offsets a query block sees, each with its ``[w, w]``
    pattern (query ``a`` may see key ``c``), or None where all may."""
    if radius is None:
        return [(0, None)]
    a = torch.arange(block)[:, None]
    c = torch.arange(block)[None]
    parts = []
    for offset in (0, -1, 1):
        # Query a of block b sits at b*w + a, key c of block b+o at
        # (b+o)*w + c.
        allowed = (a - c - offset * block).abs() <= radius  # [w, w]
        if allowed.all():
            parts.append((offset, None))
        elif allowed.any():
            parts.append((offset, allowed))
    return parts


def _local_masks(local_bias: Tensor, block: int, radius: Optional[int],
                 dtype: torch.dtype) -> List[Tuple[int, Tensor]]:
    """Per offset ``o``, the mask ``[B, n_o, 1, w or 1, w]`` of the query
    blocks that have a block ``b + o`` (``n_o`` of them), from the key
    bias of that block and the window pattern."""
    B, Np = local_bias.shape
    nb = Np // block
    bias = local_bias.to(dtype).reshape(B, nb, 1, 1, block)
    masks = []
    for offset, allowed in _offsets(block, radius):
        keys = bias[:, max(offset, 0):nb + min(offset, 0)]
        if allowed is not None:
            pattern = torch.zeros(block, block, dtype=dtype,
                                  device=local_bias.device)
            pattern.masked_fill_(~allowed.to(local_bias.device), MASKED)
            keys = keys + pattern  # [B, n_o, 1, w, w]
        masks.append((offset, keys.contiguous()))
    return masks


def _spans(offset: int, nb: int) -> Tuple[slice, slice]:
    """Query blocks and key blocks of an offset."""
    return (slice(max(-offset, 0), nb - max(offset, 0)),
            slice(max(offset, 0), nb + min(offset, 0)))


def _merge(out: Tensor, lse: Tensor, part_out: Tensor,
           part_lse: Tensor) -> None:
    """Fold one part into the running ``out`` (float32 or 64) and ``lse`` in
    place: both are then those of the softmax over the union of keys."""
    new = torch.logaddexp(lse, part_lse)
    out.mul_((lse - new).exp_().unsqueeze(-1))
    out.addcmul_(part_out.to(out.dtype),
                 (part_lse - new).exp_().unsqueeze(-1))
    lse.copy_(new)


class _WindowSharedAttention(torch.autograd.Function):
    """Autograd of :func:`window_shared_attention` at a padded length;
    the module docstring says why one fused backward per part is exact."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, local_bias: Tensor,
                shared_k: Optional[Tensor], shared_v: Optional[Tensor],
                shared_bias: Optional[Tensor], block: int,
                radius: Optional[int]) -> Tensor:
        B, h, Np, d = q.shape
        nb = Np // block
        masks = _local_masks(local_bias, block, radius, q.dtype)
        shared_mask = None
        # Output in [B, N, h, d] memory, so that merging heads is a view.
        acc = torch.promote_types(q.dtype, torch.float32)  # bf16 -> fp32
        out = q.new_empty(B, Np, h, d, dtype=acc).transpose(1, 2)
        lse = q.new_full((B, h, Np), MASKED, dtype=acc)
        out.zero_()
        if shared_k is not None:
            if shared_bias is not None:
                shared_mask = shared_bias.to(q.dtype)[:, None, None, :]
            part_out, part_lse = _flash(q, shared_k, shared_v,
                                        attn_mask=shared_mask)
            _merge(out, lse, part_out, part_lse)
            del part_out
        for b in range(B):
            qb, kb, vb = (_blocks(t[b], block) for t in (q, k, v))
            out_b = _blocks(out[b], block)  # [nb, h, w, d]
            lse_b = lse[b].unflatten(1, (nb, block)).transpose(0, 1)
            for offset, mask in masks:
                rows, cols = _spans(offset, nb)
                part_out, part_lse = _flash(
                    qb[rows], kb[cols], vb[cols],
                    attn_mask=mask[b])  # [n_o, h, w, d], [n_o, h, w]
                _merge(out_b[rows], lse_b[rows], part_out, part_lse)
                del part_out
        out = out.to(q.dtype)
        ctx.save_for_backward(q, k, v, shared_k, shared_v, shared_mask,
                              out, lse, *(mask for _, mask in masks))
        ctx.offsets = [offset for offset, _ in masks]
        ctx.block = block
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        q, k, v, shared_k, shared_v, shared_mask, out, lse, *masks = \
            ctx.saved_tensors
        block = ctx.block
        B, h, Np, d = q.shape
        nb = Np // block
        grad_out = grad_out.to(q.dtype)
        # Gradients in [B, N, h, d] memory like q, k, v of a fused qkv.
        grads = [
            q.new_zeros(B, Np, h, d, dtype=torch.promote_types(
                q.dtype, torch.float32)).transpose(1, 2)
            for _ in range(3)
        ]
        dq, dk, dv = grads
        dsk = dsv = None
        if shared_k is not None:
            dq_s, dsk, dsv = _flash_backward(
                grad_out, q, shared_k, shared_v, out, lse, 0., False,
                attn_mask=shared_mask)
            dq.add_(dq_s)
            del dq_s
        for b in range(B):
            qb, kb, vb, ob, gb = (_blocks(t[b], block)
                                  for t in (q, k, v, out, grad_out))
            lse_b = lse[b].unflatten(1, (nb, block)).transpose(0, 1)
            dqb, dkb, dvb = (_blocks(t[b], block) for t in grads)
            for offset, mask in zip(ctx.offsets, masks):
                rows, cols = _spans(offset, nb)
                g_q, g_k, g_v = _flash_backward(
                    gb[rows], qb[rows], kb[cols], vb[cols], ob[rows],
                    lse_b[rows], 0., False, attn_mask=mask[b])
                dqb[rows].add_(g_q)
                dkb[cols].add_(g_k)
                dvb[cols].add_(g_v)
                del g_q, g_k, g_v
        dq, dk, dv = (g.to(q.dtype) for g in grads)
        return dq, dk, dv, None, dsk, dsv, None, None, None


def window_shared_attention(q: Tensor,
                            k: Tensor,
                            v: Tensor,
                            block_size: int,
                            local_bias: Tensor,
                            *,
                            radius: Optional[int] = None,
                            shared_k: Optional[Tensor] = None,
                            shared_v: Optional[Tensor] = None,
                            shared_bias: Optional[Tensor] = None) -> Tensor:
    """Window plus shared-key attention in one exact softmax, saving only
    ``q, k, v``, the output and its log-sum-exp for backward.

    Query ``i`` (block ``b = i // block_size``) attends to the local keys
    (with ``radius=None`` every key of its block; else every ``j`` with
    ``|i - j| <= radius``, ``radius <= block_size``), each with logit bias
    ``local_bias`` (``MASKED`` leaves a key out, e.g. one that is also
    shared), and to every shared key with ``shared_bias``. Equals
    :func:`~.blockwise.blockwise_attention` with the same pattern, in
    values and gradients up to rounding. Check
    :func:`~.split_softmax.split_softmax_supported` first.

    Args:
        q, k, v (Tensor): ``[B, h, N, d]``; views of a fused projection are
            read in place.
        block_size (int): Tokens per block.
        local_bias (Tensor): ``[B, N]`` logit bias of each local key.
        radius (int, optional): Sliding-window half width.
        shared_k, shared_v (Tensor, optional): ``[B, h, S, d]``.
        shared_bias (Tensor, optional): ``[B, S]``.

    Returns:
        Tensor: ``[B, h, N, d]``, stored as ``[B, N, h, d]``.
    """
    B, h, N, d = q.shape
    w = int(block_size)
    if w < 1:
        raise ValueError(f'block_size={block_size} must be >= 1')
    if radius is not None and not 0 <= radius <= w:
        raise ValueError(f'radius={radius} must lie in [0, block_size={w}]')
    if tuple(local_bias.shape) != (B, N):
        raise ValueError(f'local_bias has shape {tuple(local_bias.shape)}, '
                         f'expected [B, N] = [{B}, {N}]')
    if (shared_k is None) != (shared_v is None):
        raise ValueError('shared_k and shared_v must be given together')
    if shared_k is not None and shared_k.shape[2] == 0:
        shared_k = shared_v = shared_bias = None
    pad = -N % w
    local_bias = local_bias.detach()
    if pad:
        # Padded keys are masked; padded queries see their window and are
        # cut off below (their output gradient is zero).
        q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
        local_bias = F.pad(local_bias, (0, pad), value=MASKED)
    out = _WindowSharedAttention.apply(
        q, k, v, local_bias, shared_k, shared_v,
        None if shared_bias is None else shared_bias.detach(), w, radius)
    return out[:, :, :N]

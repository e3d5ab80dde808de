"""One softmax over two key sets, computed as two fused attentions and
merged exactly through their log-sum-exps.

A query that sees a *local* block of keys and a *shared* set of keys (the
same for every query: strided tokens, memory) is one softmax over their
union. Copying the shared keys next to every block (what
:func:`~.blockwise.blockwise_attention` does) turns one large, efficient
attention into many small ones. Here the two parts stay apart instead:

* shared: every query against the shared keys, one fused call;
* local: blocks folded into the batch axis, one fused call;

and, with ``l1, l2`` each part's log-sum-exp of the logits of a query and
``o1, o2`` its normalised output, the softmax over the union is
``o = exp(l1 - l) o1 + exp(l2 - l) o2`` with ``l = logaddexp(l1, l2)``.

The backward pass needs no extra storage either: the gradient of a softmax
over the union, restricted to one part's keys, is what a fused attention
backward computes for that part when it is given the *merged* output and
log-sum-exp (its probabilities ``exp(s - l)`` are then exactly the union's).
So the backward is two fused backward calls, and only ``q, k, v``, the
merged output and ``l`` are saved.

The fused calls are PyTorch's CPU flash-attention kernel, which returns the
log-sum-exp (the public ``scaled_dot_product_attention`` does not); other
devices and attention dropout use :func:`~.blockwise.blockwise_attention`.
Logit biases are constants here (``log(size)`` of token counts and masks):
they receive no gradient, and callers fall back when one requires it.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['MASKED', 'split_softmax_supported', 'local_shared_attention']

# A finite "minus infinity" for masked keys: a row whose keys are all masked
# then has a log-sum-exp near -1e30 (weight 0 after merging) instead of the
# kernel's 0 for a row of -inf, and no inf - inf appears anywhere.
MASKED = -1e30

_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
_flash_backward = \
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward


def split_softmax_supported(q: Tensor, dropout_p: float,
                            *biases: Optional[Tensor]) -> bool:
    """Whether :func:`local_shared_attention` can run: CPU tensors, no
    dropout, and no bias that needs a gradient."""
    return (q.device.type == 'cpu' and dropout_p == 0.
            and q.dtype in (torch.float32, torch.bfloat16)
            and not any(b is not None and b.requires_grad for b in biases))


def _to_blocks(t: Tensor, block: int) -> Tensor:
    """``[B, h, N, *]`` -> ``[B * nb, h, block, *]``, zero-padded; a view
    of ``t`` (no copy) when ``block`` divides ``N`` and the strides allow,
    which the fused kernel reads as is."""
    B, h, N = t.shape[:3]
    nb = -(-N // block)
    if nb * block != N:
        pad = [0, 0] * (t.dim() - 3) + [0, nb * block - N]
        t = F.pad(t, pad)
    t = t.reshape(B, h, nb, block, *t.shape[3:])
    return t.transpose(1, 2).reshape(B * nb, h, block, *t.shape[4:])


def _from_blocks(t: Tensor, batch: int, length: int) -> Tensor:
    """``[B * nb, h, block, *]`` -> ``[B, h, length, *]`` (padding cut)."""
    Bnb, h, w = t.shape[:3]
    nb = Bnb // batch
    t = t.reshape(batch, nb, h, w, *t.shape[3:]).transpose(1, 2)
    return t.reshape(batch, h, nb * w, *t.shape[4:])[:, :, :length]


def _masks(local_bias: Tensor, shared_bias: Optional[Tensor], block: int,
           dtype: torch.dtype) -> Tuple[Tensor, Optional[Tensor]]:
    """SDPA masks: ``[B * nb, 1, 1, block]`` local (padding masked) and
    ``[B, 1, 1, S]`` shared (or None)."""
    B, N = local_bias.shape
    nb = -(-N // block)
    local = F.pad(local_bias, (0, nb * block - N), value=MASKED)
    local = local.to(dtype).reshape(B * nb, 1, 1, block)
    shared = None if shared_bias is None else \
        shared_bias.to(dtype)[:, None, None, :]
    return local, shared


class _LocalSharedAttention(torch.autograd.Function):
    """Autograd of :func:`local_shared_attention`; see the module
    docstring for why two fused backward calls are exact."""

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, v: Tensor, local_bias: Tensor,
                shared_k: Tensor, shared_v: Tensor,
                shared_bias: Optional[Tensor], block: int) -> Tensor:
        B, h, N, d = q.shape
        local_mask, shared_mask = _masks(local_bias, shared_bias, block,
                                         q.dtype)
        o1, l1 = _flash(q, shared_k, shared_v,
                        attn_mask=shared_mask)  # [B, h, N, d], [B, h, N]
        o2, l2 = _flash(
            _to_blocks(q, block), _to_blocks(k, block), _to_blocks(v, block),
            attn_mask=local_mask)  # [B * nb, h, w, d], [B * nb, h, w]
        Np = o2.shape[0] // B * block
        o2, l2 = _from_blocks(o2, B, Np), _from_blocks(l2, B, Np)
        lse = torch.logaddexp(l1, l2[:, :, :N])  # [B, h, N], float32
        w1 = (l1 - lse).exp_().unsqueeze(-1)  # [B, h, N, 1]
        w2 = (l2[:, :, :N] - lse).exp_().unsqueeze(-1)
        if q.dtype == torch.float32:  # o1 is ours: merge in place
            out = o1.mul_(w1).addcmul_(o2[:, :, :N], w2)  # [B, h, N, d]
        else:
            out = torch.addcmul(o1.float() * w1, o2[:, :, :N].float(),
                                w2).to(q.dtype)  # [B, h, N, d]
        # Padded query rows keep their own local result: consistent inputs
        # for the fused backward (their output gradient is zero).
        ctx.save_for_backward(q, k, v, local_mask, shared_k, shared_v,
                              shared_mask, out, lse, o2[:, :, N:].clone(),
                              l2[:, :, N:].clone())
        ctx.block = block
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (q, k, v, local_mask, shared_k, shared_v, shared_mask, out, lse,
         pad_out, pad_lse) = ctx.saved_tensors
        block = ctx.block
        B, h, N, d = q.shape
        grad_out = grad_out.to(q.dtype).contiguous()
        dq, dsk, dsv = _flash_backward(
            grad_out, q, shared_k, shared_v, out, lse, 0., False,
            attn_mask=shared_mask)
        full_out, full_lse = out, lse
        if pad_out.shape[2]:
            full_out = torch.cat([out, pad_out], 2)  # [B, h, nb * w, d]
            full_lse = torch.cat([lse, pad_lse], 2)  # [B, h, nb * w]
        dqb, dkb, dvb = _flash_backward(
            _to_blocks(grad_out, block), _to_blocks(q, block),
            _to_blocks(k, block), _to_blocks(v, block),
            _to_blocks(full_out, block), _to_blocks(full_lse, block), 0.,
            False, attn_mask=local_mask)
        dq = dq.add_(_from_blocks(dqb, B, N))
        dk = _from_blocks(dkb, B, N)
        dv = _from_blocks(dvb, B, N)
        return dq, dk, dv, None, dsk, dsv, None, None


def local_shared_attention(q: Tensor,
                           k: Tensor,
                           v: Tensor,
                           block_size: int,
                           local_bias: Tensor,
                           shared_k: Tensor,
                           shared_v: Tensor,
                           shared_bias: Optional[Tensor] = None) -> Tensor:
    """Blocked-window plus shared-key attention in one exact softmax.

    Query ``i`` attends to the keys of its block (``i // block_size``) with
    logit bias ``local_bias`` (``MASKED`` leaves a key out, e.g. one that is
    also shared, so it counts once) and to every shared key with
    ``shared_bias``. Equals :func:`~.blockwise.blockwise_attention` with
    ``radius=None``, in values and gradients, at the cost of one attention
    of ``N`` queries against ``S`` keys plus ``N / block_size`` attentions
    of ``block_size`` tokens: no ``N x N`` matrix, nor any copy of the
    shared keys per block. Check :func:`split_softmax_supported` first.

    Args:
        q, k, v (Tensor): ``[B, h, N, d]``.
        block_size (int): Tokens per local block.
        local_bias (Tensor): ``[B, N]`` logit bias of each key in its block.
        shared_k, shared_v (Tensor): ``[B, h, S, d]``, ``S >= 1``.
        shared_bias (Tensor, optional): ``[B, S]``.

    Returns:
        Tensor: ``[B, h, N, d]``.
    """
    B, h, N, d = q.shape
    if block_size < 1:
        raise ValueError(f'block_size={block_size} must be >= 1')
    if tuple(local_bias.shape) != (B, N):
        raise ValueError(f'local_bias has shape {tuple(local_bias.shape)}, '
                         f'expected [B, N] = [{B}, {N}]')
    if shared_k.shape[2] < 1:
        raise ValueError('local_shared_attention needs at least one shared '
                         'key; use blockwise_attention without shared keys')
    return _LocalSharedAttention.apply(q, k, v, local_bias.detach(), shared_k,
                                       shared_v,
                                       None if shared_bias is None else
                                       shared_bias.detach(),
                                       int(block_size))

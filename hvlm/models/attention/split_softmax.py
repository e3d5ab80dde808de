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

This module holds what the split-softmax layers share (the kernels, the
finite mask value, when the path applies); the attention itself, for
blocked and sliding windows, is
:func:`~.local_global_window.window_shared_attention`.

The fused calls are PyTorch's CPU flash-attention kernel, which returns the
log-sum-exp (the public ``scaled_dot_product_attention`` does not); other
devices and attention dropout use :func:`~.blockwise.blockwise_attention`.
Logit biases are constants here (``log(size)`` of token counts and masks):
they receive no gradient, and callers fall back when one requires it.
"""
from typing import Optional

import torch
from torch import Tensor

__all__ = ['MASKED', 'split_softmax_supported']

# A finite "minus infinity" for masked keys: a row whose keys are all masked
# then has a log-sum-exp near -1e30 (weight 0 after merging) instead of the
# kernel's 0 for a row of -inf, and no inf - inf appears anywhere.
MASKED = -1e30

_flash = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
_flash_backward = \
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward


def split_softmax_supported(q: Tensor, dropout_p: float,
                            *biases: Optional[Tensor]) -> bool:
    """Whether the split-softmax path
    (:func:`~.local_global_window.window_shared_attention`) can run: CPU
    tensors, no dropout, and no bias that needs a gradient."""
    return (q.device.type == 'cpu' and dropout_p == 0.
            and q.dtype in (torch.float32, torch.bfloat16)
            and not any(b is not None and b.requires_grad for b in biases))

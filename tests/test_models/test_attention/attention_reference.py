"""Reference math shared by the attention tests (imported by name: this
directory is on ``sys.path`` under pytest's default import mode)."""
import torch


def heads_of(attn, x, memory=None):
    """q, k, v ``[B, h, *, d]`` computed from the qkv weights by hand; keys
    and values over ``[memory; x]``."""
    B, N, C = x.shape
    h, d = attn.num_heads, attn.head_dims
    W, b = attn.qkv.weight, attn.qkv.bias
    src = x if memory is None else torch.cat([memory, x], 1)
    L = src.shape[1]
    q = (x @ W[:C].T + b[:C]).reshape(B, N, h, d).transpose(1, 2)
    k = (src @ W[C:2 * C].T + b[C:2 * C]).reshape(B, L, h, d).transpose(1, 2)
    v = (src @ W[2 * C:].T + b[2 * C:]).reshape(B, L, h, d).transpose(1, 2)
    return q, k, v

import math

import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS


def build(**kwargs):
    cfg = dict(type='FullAttention', embed_dims=16, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def reference(attn, x, size=None, memory=None):
    """softmax(Q K^T / sqrt(d) + log s) V written out by hand."""
    B, N, C = x.shape
    h, d = attn.num_heads, attn.head_dims
    W, b = attn.qkv.weight, attn.qkv.bias
    q = (x @ W[:C].T + b[:C]).reshape(B, N, h, d).transpose(1, 2)
    src = x if memory is None else torch.cat([memory, x], 1)
    L = src.shape[1]
    k = (src @ W[C:2 * C].T + b[C:2 * C]).reshape(B, L, h, d).transpose(1, 2)
    v = (src @ W[2 * C:].T + b[2 * C:]).reshape(B, L, h, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # [B, h, N, L]
    if size is not None:
        full = size if memory is None else torch.cat(
            [torch.ones(B, memory.shape[1]), size], 1)
        logits = logits + full.log()[:, None, None, :]
    out = logits.softmax(-1) @ v  # [B, h, N, d]
    out = out.transpose(1, 2).reshape(B, N, C)
    return attn.proj(out)


@pytest.mark.parametrize('use_size', [False, True])
@pytest.mark.parametrize('use_memory', [False, True])
def test_matches_reference_and_gradients(use_size, use_memory):
    torch.manual_seed(0)
    attn = build()
    x = torch.randn(2, 5, 16, requires_grad=True)
    size = torch.randint(1, 5, (2, 5)).float() if use_size else None
    memory = torch.randn(2, 3, 16) if use_memory else None
    out = attn(x, size=size, memory=memory)
    ref = reference(attn, x, size=size, memory=memory)
    assert out.shape == (2, 5, 16)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [x, attn.qkv.weight])
    ref_grads = torch.autograd.grad((ref * g).sum(), [x, attn.qkv.weight])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_size_acts_like_duplicated_keys():
    """A key of size 2 must weigh exactly like two identical keys."""
    torch.manual_seed(0)
    attn = build()
    x = torch.randn(1, 3, 16)
    dup = torch.cat([x, x[:, 2:]], 1)  # token 2 twice
    out_dup = attn(dup)[:, :2]
    out_size = attn(x, size=torch.tensor([[1., 1., 2.]]))[:, :2]
    torch.testing.assert_close(out_size, out_dup, atol=1e-5, rtol=1e-5)


def test_no_mask_without_size(monkeypatch):
    """The fast path: with size=None SDPA must get no mask at all."""
    seen = {}
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        seen['mask'] = kwargs.get('attn_mask')
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, 'scaled_dot_product_attention',
                        spy)
    attn = build()
    attn(torch.randn(2, 4, 16))
    assert seen['mask'] is None
    attn(torch.randn(2, 4, 16), size=torch.ones(2, 4))
    assert seen['mask'].shape == (2, 1, 1, 4)  # a bias, not an N x N mask


def test_bad_arguments():
    with pytest.raises(ValueError, match='embed_dims=10.*num_heads=4'):
        build(embed_dims=10)
    attn = build()
    with pytest.raises(ValueError, match=r'size has shape \(2, 3\)'):
        attn(torch.randn(2, 4, 16), size=torch.ones(2, 3))
    with pytest.raises(ValueError, match='memory has shape'):
        attn(torch.randn(2, 4, 16), memory=torch.randn(2, 3, 8))

import math

import pytest
import torch

from hvlm.models.attention.blockwise import (blockwise_attention, merge_heads,
                                             size_bias, split_heads)


def dense(q, k, v, allowed, bias):
    """softmax(Q K^T / sqrt(d) + bias, masked) V over every key at once.

    ``allowed [N, L]`` bool, ``bias [B, L]``; ``k, v [B, h, L, d]``."""
    logits = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    logits = logits + bias[:, None, None, :]
    logits = logits.masked_fill(~allowed, float('-inf'))
    return logits.softmax(-1) @ v


def pattern(N, block, radius, exclude, S, owner):
    """The ``[N, S + N]`` allowed matrix the blockwise call should realise
    (shared keys first, then the local keys)."""
    i = torch.arange(N)[:, None]
    j = torch.arange(N)[None]
    if radius is None:
        local = i // block == j // block
    else:
        local = (i - j).abs() <= radius
    local = local & ~exclude[None]
    shared = owner[None, :] != (torch.arange(N) // block)[:, None]
    return torch.cat([shared, local], 1)


CASES = [
    # N, block, radius, num_shared, with owner, with bias
    (12, 4, None, 0, False, False),
    (13, 4, None, 0, False, True),  # padding
    (13, 5, 3, 0, False, True),  # sliding + padding
    (17, 4, 4, 3, False, True),  # radius == block
    (11, 3, None, 5, True, True),  # shared keys with owners
    (29, 2, 1, 9, False, True),  # several chunks (recomputed)
    (6, 6, 0, 2, False, False),  # radius 0: self only + shared
]


@pytest.mark.parametrize('N,block,radius,S,use_owner,use_bias', CASES)
def test_matches_dense_masked_softmax(N, block, radius, S, use_owner,
                                      use_bias):
    torch.manual_seed(N)
    B, h, d = 2, 2, 4
    q, k, v = (torch.randn(B, h, N, d, requires_grad=True)
               for _ in range(3))
    sk, sv = (torch.randn(B, h, S, d, requires_grad=True) for _ in range(2))
    bias = torch.rand(B, N).log() if use_bias else torch.zeros(B, N)
    sbias = torch.rand(B, S).log() if use_bias else torch.zeros(B, S)
    exclude = torch.rand(N) < 0.3 if S else torch.zeros(N, dtype=torch.bool)
    owner = torch.randint(-1, math.ceil(N / block),
                          (S, )) if use_owner else torch.full((S, ), -1)
    out = blockwise_attention(
        q, k, v, block,
        radius=radius,
        key_bias=bias if use_bias else None,
        local_exclude=exclude if S else None,
        shared_k=sk if S else None,
        shared_v=sv if S else None,
        shared_bias=sbias if use_bias and S else None,
        shared_owner=owner if use_owner else None)
    allowed = pattern(N, block, radius, exclude, S, owner)
    ref = dense(q, torch.cat([sk, k], 2), torch.cat([sv, v], 2), allowed,
                torch.cat([sbias, bias], 1))
    assert out.shape == (B, h, N, d)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)

    g = torch.randn_like(out)
    inputs = [q, k, v] + ([sk, sv] if S else [])
    grads = torch.autograd.grad((out * g).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * g).sum(), inputs)
    for a, b in zip(grads, ref_grads):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_one_block_without_mask_is_sdpa(monkeypatch):
    """N a multiple of the block, no bias: SDPA gets no mask at all."""
    seen = []
    sdpa = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kwargs):
        seen.append((q.dim(), kwargs.get('attn_mask')))
        return sdpa(q, k, v, **kwargs)

    monkeypatch.setattr(torch.nn.functional, 'scaled_dot_product_attention',
                        spy)
    q, k, v = (torch.randn(1, 2, 8, 4) for _ in range(3))
    out = blockwise_attention(q, k, v, 8)
    torch.testing.assert_close(out, sdpa(q, k, v))
    assert seen == [(4, None)]


def test_heads_round_trip_and_size_bias():
    x = torch.randn(2, 5, 12)
    h = split_heads(x, 3)
    assert h.shape == (2, 3, 5, 4)
    torch.testing.assert_close(merge_heads(h), x)
    assert size_bias(None, 2, 5, torch.float32) is None
    size = torch.tensor([[1., 2.], [4., 1.]])
    torch.testing.assert_close(
        size_bias(size, 2, 2, torch.float32), size.log())
    with pytest.raises(ValueError, match=r'size has shape \(2, 2\)'):
        size_bias(size, 2, 3, torch.float32)


def test_bad_arguments():
    q = torch.randn(1, 1, 4, 2)
    with pytest.raises(ValueError, match='block_size=0'):
        blockwise_attention(q, q, q, 0)
    with pytest.raises(ValueError, match='radius=5 must lie in'):
        blockwise_attention(q, q, q, 2, radius=5)
    with pytest.raises(ValueError, match='together'):
        blockwise_attention(q, q, q, 2, shared_k=q)

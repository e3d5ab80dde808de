import math

import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS


def build(**kwargs):
    cfg = dict(type='HierarchicalAttentionBlock', embed_dims=16, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def reference(attn, x, window, size=None, pool='avg', memory=None):
    """Each query: fine keys of its window + one pooled key per other
    window (size-weighted mean or max of its keys/values, bias log of the
    window's total size), plus the memory tokens, one dense masked
    softmax."""
    B, N, C = x.shape
    h, d = attn.num_heads, attn.head_dims
    W, b = attn.qkv.weight, attn.qkv.bias
    size = torch.ones(B, N) if size is None else size
    q = (x @ W[:C].T + b[:C]).reshape(B, N, h, d).transpose(1, 2)
    k = (x @ W[C:2 * C].T + b[C:2 * C]).reshape(B, N, h, d).transpose(1, 2)
    v = (x @ W[2 * C:].T + b[2 * C:]).reshape(B, N, h, d).transpose(1, 2)
    windows = [range(s, min(s + window, N)) for s in range(0, N, window)]
    pk, pv, pb = [], [], []
    for idx in windows:
        idx = list(idx)
        s = size[:, idx]  # [B, n]
        if pool == 'avg':
            wt = (s / s.sum(1, keepdim=True))[:, None, :, None]
            pk.append((k[:, :, idx] * wt).sum(2))
            pv.append((v[:, :, idx] * wt).sum(2))
        else:
            pk.append(k[:, :, idx].amax(2))
            pv.append(v[:, :, idx].amax(2))
        pb.append(s.sum(1).log())
    pk, pv = torch.stack(pk, 2), torch.stack(pv, 2)  # [B, h, nb, d]
    bias = torch.cat([torch.stack(pb, 1), size.log()], 1)  # [B, nb + N]
    keys, values = torch.cat([pk, k], 2), torch.cat([pv, v], 2)
    own = torch.arange(N) // window  # [N]
    M = 0
    if memory is not None:
        M = memory.shape[1]
        mk = (memory @ W[C:2 * C].T + b[C:2 * C]).reshape(B, M, h, d)
        mv = (memory @ W[2 * C:].T + b[2 * C:]).reshape(B, M, h, d)
        keys = torch.cat([mk.transpose(1, 2), keys], 2)
        values = torch.cat([mv.transpose(1, 2), values], 2)
        bias = torch.cat([torch.zeros(B, M), bias], 1)
    logits = q @ keys.transpose(-1, -2) / math.sqrt(d)
    logits = logits + bias[:, None, None, :]
    allowed = torch.cat([
        torch.ones(N, M, dtype=torch.bool),
        own[:, None] != torch.arange(len(windows))[None],
        own[:, None] == own[None]
    ], 1)  # [N, M + nb + N]
    logits = logits.masked_fill(~allowed, float('-inf'))
    out = (logits.softmax(-1) @ values).transpose(1, 2).reshape(B, N, C)
    return attn.proj(out)


@pytest.mark.parametrize('N,window', [(16, 4), (13, 4), (23, 5), (9, 2)])
@pytest.mark.parametrize('use_size', [False, True])
@pytest.mark.parametrize('pool', ['avg', 'max'])
def test_matches_dense_reference_and_gradients(N, window, use_size, pool):
    torch.manual_seed(N)
    attn = build(window_size=window, pool=pool)
    x = torch.randn(2, N, 16, requires_grad=True)
    size = torch.randint(1, 5, (2, N)).float() if use_size else None
    out = attn(x, size=size)
    ref = reference(attn, x, window, size, pool)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    params = [x, attn.qkv.weight, attn.proj.weight]
    grads = torch.autograd.grad((out * g).sum(), params)
    ref_grads = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_windows_are_frames_when_the_grid_is_known():
    torch.manual_seed(0)
    attn = build()
    x = torch.randn(2, 3 * 2 * 4, 16)
    out = attn(x, shape=(3, 2, 4))
    torch.testing.assert_close(out, reference(attn, x, 8), atol=1e-5,
                               rtol=1e-5)
    assert attn.window_of(24, None) == 5  # ceil(sqrt(24))
    with pytest.raises(ValueError, match=r'shape=\(3, 2, 2\) has 12'):
        attn(x, shape=(3, 2, 2))


@pytest.mark.parametrize('kwargs', [
    dict(num_levels=1, window_size=3),
    dict(window_size=64),
    dict(window_size=1),  # one token per window: pooled key == the token
])
def test_degenerate_cases_equal_full_attention(kwargs):
    torch.manual_seed(0)
    attn = build(**kwargs)
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=16,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict())
    x = torch.randn(2, 11, 16)
    size = torch.randint(1, 4, (2, 11)).float()
    torch.testing.assert_close(attn(x, size=size), full(x, size=size),
                               atol=1e-5, rtol=1e-5)


def test_pooled_window_of_equal_tokens_is_exact():
    """Avg pooling loses nothing when a window's tokens are identical."""
    torch.manual_seed(0)
    attn = build(window_size=4)
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=16,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict())
    # Windows 1 and 2 hold 4 copies of one token each; window 0 varies.
    x = torch.cat([
        torch.randn(1, 4, 16),
        torch.randn(1, 2, 1, 16).expand(1, 2, 4, 16).reshape(1, 8, 16)
    ], 1)  # [1, 12, 16]
    torch.testing.assert_close(attn(x)[:, :4], full(x)[:, :4], atol=1e-5,
                               rtol=1e-5)


def test_memory_tokens_are_extra_keys():
    torch.manual_seed(0)
    attn = build(window_size=4)
    x, memory = torch.randn(2, 10, 16), torch.randn(2, 3, 16)
    size = torch.randint(1, 4, (2, 10)).float()
    out = attn(x, size=size, memory=memory)
    ref = reference(attn, x, 4, size, memory=memory)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='memory has shape'):
        attn(x, memory=torch.randn(2, 3, 8))


def test_bf16_autocast_backward():
    torch.manual_seed(0)
    attn = build()
    x = torch.randn(2, 4 * 3 * 3, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x, shape=(4, 3, 3),
                   size=torch.randint(1, 3, (2, 36)).float())
    out.float().pow(2).mean().backward()
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_large_n_allocates_nothing_quadratic():
    """16k tokens: no allocation comes near N x N x 4 bytes (1 GiB)."""
    torch.manual_seed(0)
    N = 16384
    attn = build(embed_dims=8, num_heads=1)
    x = torch.randn(1, N, 8, requires_grad=True)
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        attn(x).sum().backward()
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert torch.isfinite(x.grad).all()
    assert largest < N * N * 4 / 64, largest


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool='median'"):
        build(pool='median')
    with pytest.raises(ValueError, match='num_levels=3'):
        build(num_levels=3)
    with pytest.raises(ValueError, match='window_size=0'):
        build(window_size=0)


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('HierarchicalAttentionBlock', config='hierarchical')

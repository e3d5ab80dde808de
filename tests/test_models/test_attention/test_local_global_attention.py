import math

import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS


def build(**kwargs):
    cfg = dict(type='LocalGlobalAttention', embed_dims=16, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def longformer_pattern(N, window, num_global, sliding, M=0):
    """Written from the definition, independently of the module."""
    i = torch.arange(N)[:, None]
    j = torch.arange(N)[None]
    if sliding:
        local = (i - j).abs() <= window // 2
    else:
        local = i // window == j // window
    G = min(num_global, N)
    glob = torch.zeros(N, dtype=torch.bool)
    glob[[math.floor((g + 0.5) * N / G) for g in range(G)]] = True
    allowed = local | glob[None, :] | glob[:, None]  # [N, N]
    return torch.cat([torch.ones(N, M, dtype=torch.bool), allowed], 1)


@pytest.mark.parametrize('N,window,num_global,sliding', [
    (16, 4, 2, True), (13, 6, 3, True), (21, 3, 0, True), (13, 5, 2, False),
    (9, 1, 1, True), (30, 8, 5, False)
])
@pytest.mark.parametrize('use_size', [False, True])
def test_matches_dense_reference_and_gradients(N, window, num_global,
                                               sliding, use_size,
                                               masked_reference):
    torch.manual_seed(N)
    attn = build(window_size=window, num_global=num_global, sliding=sliding)
    x = torch.randn(2, N, 16, requires_grad=True)
    size = torch.randint(1, 5, (2, N)).float() if use_size else None
    out = attn(x, size=size)
    ref = masked_reference(attn, x,
                    longformer_pattern(N, window, num_global, sliding), size)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    params = [x, attn.qkv.weight, attn.proj.weight]
    grads = torch.autograd.grad((out * g).sum(), params)
    ref_grads = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_global_positions_spread_over_the_clip():
    pos = ATTENTIONS.get('LocalGlobalAttention').global_positions(16, 4)
    assert pos.tolist() == [2, 6, 10, 14]
    assert ATTENTIONS.get('LocalGlobalAttention').global_positions(
        3, 8).tolist() == [0, 1, 2]


def test_memory_tokens_are_seen_by_every_query(masked_reference):
    torch.manual_seed(0)
    attn = build(window_size=4, num_global=2)
    x, memory = torch.randn(2, 10, 16), torch.randn(2, 3, 16)
    size = torch.randint(1, 4, (2, 10)).float()
    out = attn(x, size=size, memory=memory)
    allowed = longformer_pattern(10, 4, 2, True, M=3)
    ref = masked_reference(attn, x, allowed, size, memory)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('kwargs', [
    dict(window_size=11, num_global=0, sliding=False),
    dict(window_size=64, num_global=0, sliding=True),
    dict(window_size=2, num_global=11, sliding=True),
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


def test_bf16_autocast_backward():
    torch.manual_seed(0)
    attn = build(window_size=8, num_global=3)
    x = torch.randn(2, 37, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x, size=torch.randint(1, 3, (2, 37)).float())
    out.float().pow(2).mean().backward()
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_large_n_allocates_nothing_quadratic():
    """16k tokens: no allocation comes near N x N x 4 bytes (1 GiB)."""
    torch.manual_seed(0)
    N = 16384
    attn = build(embed_dims=8, num_heads=1, window_size=64, num_global=16)
    x = torch.randn(1, N, 8, requires_grad=True)
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        attn(x).sum().backward()
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert torch.isfinite(x.grad).all()
    assert largest < N * N * 4 / 64, largest


def test_bad_arguments():
    with pytest.raises(ValueError, match='window_size=0'):
        build(window_size=0)
    with pytest.raises(ValueError, match='num_global=-1'):
        build(num_global=-1)
    with pytest.raises(ValueError, match=r'size has shape \(2, 3\)'):
        build()(torch.randn(2, 4, 16), size=torch.ones(2, 3))
    with pytest.raises(ValueError, match='memory has shape'):
        build()(torch.randn(2, 4, 16), memory=torch.randn(2, 3, 8))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('LocalGlobalAttention', config='local_global')


@pytest.mark.parametrize('N,block,radius,S', [
    (16, 4, 4, 3), (13, 4, 2, 2), (13, 5, None, 2), (9, 1, 0, 1),
    (21, 3, 3, 0), (30, 8, None, 0), (7, 8, 3, 2)
])
@pytest.mark.parametrize('use_bias', [False, True])
def test_window_shared_attention_equals_blockwise(N, block, radius, S,
                                                  use_bias):
    """The log-sum-exp merge of fused window calls gives the outputs and
    gradients of blockwise_attention (the previous implementation)."""
    from hvlm.models.attention.blockwise import blockwise_attention
    from hvlm.models.attention.local_global_window import \
        window_shared_attention
    from hvlm.models.attention.split_softmax import MASKED
    torch.manual_seed(N + block)
    B, h, d = 2, 3, 4
    q, k, v = (torch.randn(B, h, N, d, requires_grad=True) for _ in range(3))
    sk, sv = (torch.randn(B, h, S, d, requires_grad=True) for _ in range(2))
    bias = torch.randn(B, N) if use_bias else None
    shared_bias = torch.randn(B, S) if use_bias else None
    exclude = torch.zeros(N, dtype=torch.bool)
    exclude[N // 2] = True
    local_bias = torch.zeros(B, N) if bias is None else bias
    out = window_shared_attention(
        q, k, v, block, local_bias.masked_fill(exclude, MASKED),
        radius=radius, shared_k=sk if S else None,
        shared_v=sv if S else None, shared_bias=shared_bias if S else None)
    ref = blockwise_attention(
        q, k, v, block, radius=radius, key_bias=bias, local_exclude=exclude,
        shared_k=sk if S else None, shared_v=sv if S else None,
        shared_bias=shared_bias if S else None)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    inputs = [q, k, v] + ([sk, sv] if S else [])
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * g).sum(), inputs)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('radius,S', [(2, 2), (None, 1), (1, 0)])
def test_window_shared_attention_gradcheck(radius, S):
    from hvlm.models.attention.local_global_window import \
        window_shared_attention
    torch.manual_seed(0)
    dt = torch.float64
    B, h, N, d, block = 2, 2, 7, 3, 3
    q, k, v = (torch.randn(B, h, N, d, dtype=dt, requires_grad=True)
               for _ in range(3))
    sk, sv = (torch.randn(B, h, S, d, dtype=dt, requires_grad=True)
              for _ in range(2))
    local_bias = torch.randn(B, N, dtype=dt)
    shared_bias = torch.randn(B, S, dtype=dt)

    def fn(q, k, v, sk, sv):
        return window_shared_attention(
            q, k, v, block, local_bias, radius=radius,
            shared_k=sk if S else None, shared_v=sv if S else None,
            shared_bias=shared_bias if S else None)

    assert torch.autograd.gradcheck(fn, (q, k, v, sk, sv))


def test_training_saves_no_window_copies():
    """Saved for backward: x, the qkv projection, the attention output and
    the projection's input (6 [B, N, C]) and small masks; the blockwise
    path also kept 3x copies of the keys and values of a sliding window
    (14 [B, N, C] here)."""
    torch.manual_seed(0)
    attn = build(embed_dims=16, num_heads=2, window_size=16, num_global=4)
    B, N, C = 1, 512, 16
    x = torch.randn(B, N, C, requires_grad=True)
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = \
            t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = attn(x)
    out.sum().backward()
    assert sum(storages.values()) < 8 * N * C * 4, storages

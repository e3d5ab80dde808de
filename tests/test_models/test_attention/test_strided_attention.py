
import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS


def build(**kwargs):
    cfg = dict(type='StridedAttention', embed_dims=16, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def strided_pattern(N, stride, window, M=0):
    i = torch.arange(N)[:, None]
    j = torch.arange(N)[None]
    allowed = (i // window == j // window) | (j % stride == 0)  # [N, N]
    return torch.cat([torch.ones(N, M, dtype=torch.bool), allowed], 1)


@pytest.mark.parametrize('N,stride,window', [(16, 4, 4), (13, 3, 5),
                                             (23, 4, 6), (7, 2, 3), (9, 4, 4),
                                             (10, 2, 1)])
@pytest.mark.parametrize('use_size', [False, True])
def test_matches_dense_reference_and_gradients(N, stride, window, use_size,
                                               masked_reference):
    torch.manual_seed(N)
    attn = build(stride=stride, window_size=window)
    x = torch.randn(2, N, 16, requires_grad=True)
    size = torch.randint(1, 5, (2, N)).float() if use_size else None
    out = attn(x, size=size)
    ref = masked_reference(attn, x, strided_pattern(N, stride, window), size)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    params = [x, attn.qkv.weight, attn.proj.weight]
    grads = torch.autograd.grad((out * g).sum(), params)
    ref_grads = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_split_softmax_path_equals_blockwise_path():
    """The log-sum-exp merge (CPU, no dropout) and the blockwise fallback
    (taken here because ``size`` asks for a gradient) agree, memory too."""
    torch.manual_seed(0)
    attn = build(stride=3, window_size=5)
    x = torch.randn(2, 29, 16, requires_grad=True)
    memory = torch.randn(2, 3, 16)
    size = torch.randint(1, 4, (2, 29)).float()
    fast = attn(x, size=size, memory=memory)
    slow = attn(x, size=size.requires_grad_(), memory=memory)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(fast)
    fast_grad, = torch.autograd.grad((fast * g).sum(), x)
    slow_grad, = torch.autograd.grad((slow * g).sum(), x)
    torch.testing.assert_close(fast_grad, slow_grad, atol=1e-5, rtol=1e-4)


def test_memory_tokens_are_seen_by_every_query(masked_reference):
    torch.manual_seed(0)
    attn = build(stride=3, window_size=4)
    x, memory = torch.randn(2, 10, 16), torch.randn(2, 3, 16)
    size = torch.randint(1, 4, (2, 10)).float()
    out = attn(x, size=size, memory=memory)
    ref = masked_reference(
        attn, x, strided_pattern(10, 3, 4, M=3), size, memory)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('stride,window', [(1, 4), (4, 64), (3, 11)])
def test_degenerate_cases_equal_full_attention(stride, window):
    """stride 1 or window >= N: every query sees every key once."""
    torch.manual_seed(0)
    attn = build(stride=stride, window_size=window)
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=16,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict())
    x = torch.randn(2, 11, 16)
    size = torch.randint(1, 4, (2, 11)).float()
    torch.testing.assert_close(attn(x, size=size), full(x, size=size),
                               atol=1e-5, rtol=1e-5)


def test_size_acts_like_duplicated_keys():
    """Stride 1: a strided key of size 2 weighs like two identical keys."""
    torch.manual_seed(0)
    attn = build(stride=1, window_size=2)
    x = torch.randn(1, 3, 16)
    dup = torch.cat([x, x[:, 2:]], 1)
    torch.testing.assert_close(
        attn(x, size=torch.tensor([[1., 1., 2.]]))[:, :2],
        attn(dup)[:, :2], atol=1e-5, rtol=1e-5)


def test_bf16_autocast_backward():
    torch.manual_seed(0)
    attn = build()
    x = torch.randn(2, 70, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x, size=torch.randint(1, 3, (2, 70)).float())
    out.float().pow(2).mean().backward()
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_large_n_allocates_nothing_quadratic():
    """16k tokens: no allocation comes near N x N x 4 bytes (1 GiB)."""
    torch.manual_seed(0)
    N = 16384
    attn = build(embed_dims=8, num_heads=1, stride=64, window_size=64)
    x = torch.randn(1, N, 8, requires_grad=True)
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        attn(x).sum().backward()
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert largest < N * N * 4 / 64, largest


def test_bad_arguments():
    with pytest.raises(ValueError, match='stride=0'):
        build(stride=0)
    with pytest.raises(ValueError, match='window_size=0'):
        build(window_size=0)
    with pytest.raises(ValueError, match='embed_dims=10.*num_heads=4'):
        build(embed_dims=10)
    with pytest.raises(ValueError, match=r'size has shape \(2, 3\)'):
        build()(torch.randn(2, 4, 16), size=torch.ones(2, 3))
    with pytest.raises(ValueError, match='memory has shape'):
        build()(torch.randn(2, 4, 16), memory=torch.randn(2, 3, 8))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('StridedAttention', config='strided')

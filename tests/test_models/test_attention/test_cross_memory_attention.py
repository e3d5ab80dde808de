import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.attention.cross_memory_attention import (compress_memory,
                                                          merge_groups,
                                                          merge_plan)
from hvlm.registry import ATTENTIONS


def build(**kwargs):
    cfg = dict(type='CrossMemoryAttention', embed_dims=16, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def naive_compress(bank, size, max_len):
    """MA-LMM's rule one pair at a time, written plainly per video."""
    banks, sizes = [], []
    for e, s in zip(bank, size):
        e, s = list(e), list(s)
        while len(e) > max_len:
            sims = torch.stack([
                F.cosine_similarity(e[i], e[i + 1], dim=0)
                for i in range(len(e) - 1)
            ])
            i = int(sims.argmax())
            merged = (e[i] * s[i] + e[i + 1] * s[i + 1]) / (s[i] + s[i + 1])
            e[i:i + 2], s[i:i + 2] = [merged], [s[i] + s[i + 1]]
        banks.append(torch.stack(e))
        sizes.append(torch.stack(s))
    return torch.stack(banks), torch.stack(sizes)


def dense(attn, x, bank=None, bank_size=None, size=None):
    """softmax(Q [K_bank; K_x]^T / sqrt(d) + log sizes) [V_bank; V_x]."""
    B, N, C = x.shape
    h, d = attn.num_heads, attn.head_dims
    W, b = attn.qkv.weight, attn.qkv.bias
    src = x if bank is None else torch.cat([bank, x], 1)
    sizes = torch.ones(B, N) if size is None else size
    if bank is not None:
        sizes = torch.cat([bank_size, sizes], 1)
    L = src.shape[1]
    q = (x @ W[:C].T + b[:C]).reshape(B, N, h, d).transpose(1, 2)
    k = (src @ W[C:2 * C].T + b[C:2 * C]).reshape(B, L, h, d).transpose(1, 2)
    v = (src @ W[2 * C:].T + b[2 * C:]).reshape(B, L, h, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) / math.sqrt(d)
    logits = logits + sizes.log()[:, None, None, :]
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
    return attn.proj(out)


@pytest.mark.parametrize('M,max_len', [(40, 11), (9, 1), (6, 6), (5, 8)])
def test_compression_merges_most_similar_adjacent_pair(M, max_len):
    torch.manual_seed(M)
    bank = torch.randn(3, M, 6)
    size = torch.randint(1, 4, (3, M)).float()
    out, out_size = compress_memory(bank, size, max_len)
    ref, ref_size = naive_compress(bank, size, max_len)
    assert out.shape == (3, min(M, max_len), 6)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_size, ref_size)
    # Size-weighted: the total of size * entry is conserved.
    torch.testing.assert_close((out * out_size[..., None]).sum(1),
                               (bank * size[..., None]).sum(1))


def test_compression_picks_the_duplicate_pair():
    bank = torch.tensor([[[1., 0.], [0., 1.], [0., 1.], [1., 1.]]])
    out, size = compress_memory(bank, torch.tensor([[1., 1., 3., 1.]]), 3)
    torch.testing.assert_close(out, torch.tensor([[[1., 0.], [0., 1.],
                                                   [1., 1.]]]))
    torch.testing.assert_close(size, torch.tensor([[1., 4., 1.]]))
    with pytest.raises(ValueError, match='max_len=0'):
        compress_memory(bank, size, 0)


def test_bank_stays_bounded_over_many_clips():
    torch.manual_seed(0)
    attn = build(memory_size=12, carry_memory=True).eval()
    seen = 0
    for clip in range(25):
        x = torch.randn(2, 4 * 5, 16)
        with torch.no_grad():
            attn(x, shape=(4, 1, 5))
        seen += 20
        bank, size = attn.memory_bank
        assert bank.shape == (2, min(12, seen), 16)
        assert not bank.requires_grad
        torch.testing.assert_close(size.sum(1), torch.full((2, ), seen * 1.))
    attn.reset_memory()
    assert attn.memory_bank is None


def test_attention_equals_dense_reference_over_bank_and_current():
    torch.manual_seed(0)
    attn = build(memory_size=5, carry_memory=True)
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=16,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict())
    x1, x2 = torch.randn(2, 7, 16), torch.randn(2, 6, 16)
    size2 = torch.randint(1, 4, (2, 6)).float()
    # An empty bank: plain full attention over the clip.
    torch.testing.assert_close(attn(x1), full(x1), atol=1e-5, rtol=1e-5)
    bank, bank_size = attn.memory_bank
    ref_bank, ref_size = naive_compress(x1, torch.ones(2, 7), 5)
    torch.testing.assert_close(bank, ref_bank, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(bank_size, ref_size)
    out = attn(x2, size=size2)
    torch.testing.assert_close(out, dense(attn, x2, bank, bank_size, size2),
                               atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match='holds 2 videos but x has B=3'):
        attn(torch.randn(3, 6, 16))


def test_segments_stream_through_the_bank_with_gradients():
    """With a grid, each time step attends to [bank of earlier steps; its
    own tokens], and gradients reach earlier steps through the bank."""
    torch.manual_seed(0)
    attn = build(memory_size=3)
    x = torch.randn(2, 3 * 4, 16, requires_grad=True)
    out = attn(x, shape=(3, 2, 2))
    bank, bank_size, refs = None, None, []
    for t in range(3):
        seg = x[:, 4 * t:4 * t + 4]
        refs.append(dense(attn, seg, bank, bank_size))
        new = seg if bank is None else torch.cat([bank, seg], 1)
        new_size = torch.ones(2, 4) if bank is None else torch.cat(
            [bank_size, torch.ones(2, 4)], 1)
        bank, bank_size = naive_compress(new, new_size, 3)
    torch.testing.assert_close(out, torch.cat(refs, 1), atol=1e-5,
                               rtol=1e-5)
    out[:, 8:].sum().backward()  # the last step only
    assert x.grad[:, :8].abs().sum() > 0
    assert attn.memory_bank is None  # carry_memory=False keeps nothing


def test_memory_argument_is_honoured():
    torch.manual_seed(0)
    attn = build()
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=16,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict())
    x, memory = torch.randn(2, 6, 16), torch.randn(2, 3, 16)
    torch.testing.assert_close(attn(x, memory=memory),
                               full(x, memory=memory), atol=1e-5,
                               rtol=1e-5)


def test_bf16_autocast_backward():
    torch.manual_seed(0)
    attn = build(memory_size=8)
    x = torch.randn(2, 4 * 9, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x, shape=(4, 3, 3),
                   size=torch.randint(1, 3, (2, 36)).float())
    out.float().pow(2).mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in attn.parameters())


def test_large_n_allocates_nothing_quadratic():
    """16k tokens in segments of 1k: nothing near N x N x 4 bytes."""
    torch.manual_seed(0)
    N = 16384
    attn = build(embed_dims=8, num_heads=1, memory_size=256,
                 segment_len=1024)
    x = torch.randn(1, N, 8, requires_grad=True)
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            profile_memory=True) as prof:
        attn(x).sum().backward()
    largest = max(e.cpu_memory_usage for e in prof.events())
    assert torch.isfinite(x.grad).all()
    assert largest < N * N * 4 / 64, largest


def greedy_plan(bank, size, max_len):
    """MA-LMM's greedy rule pair by pair, every similarity recomputed from
    scratch each step: ``O(M^2)`` per merge, no heap, no bookkeeping.

    Entries are kept as size-weighted sums (the cosine is scale invariant),
    merged left to right in the greedy order, so with integer inputs every
    dot product is exact and ties are exact ties (the leftmost wins).
    """
    sums = [np.asarray(e, np.float64) * s for e, s in zip(bank, size)]
    runs = [[i] for i in range(len(sums))]
    while len(sums) > max_len:
        sims = []
        for a, b in zip(sums[:-1], sums[1:]):
            norms = float(a @ a) * float(b @ b)
            sims.append(float(a @ b) / math.sqrt(norms) if norms > 0 else 0.)
        i = sims.index(max(sims))  # the first maximum: leftmost on ties
        sums[i:i + 2] = [sums[i] + sums[i + 1]]
        runs[i:i + 2] = [runs[i] + runs[i + 1]]
    group = np.empty(len(bank), np.int64)
    for g, run in enumerate(runs):
        group[run] = g
    return group


@pytest.mark.parametrize('kind', ['gaussian', 'ties', 'duplicates'])
def test_merge_plan_equals_pair_by_pair_greedy(kind):
    """The heap with lazy deletion makes exactly the greedy choices,
    including on exact ties (0/1 vectors of 3 channels: many equal pairs
    and zero entries) and on runs of identical entries."""
    rng = np.random.default_rng(0)
    for trial in range(30):
        M = int(rng.integers(2, 60))
        max_len = int(rng.integers(1, M + 2))
        if kind == 'gaussian':
            bank = rng.standard_normal((M, 8))
            size = rng.integers(1, 50, M).astype(np.float64)
        elif kind == 'ties':
            bank = rng.integers(0, 2, (M, 3)).astype(np.float64)
            size = rng.integers(1, 4, M).astype(np.float64)
        else:
            base = rng.integers(-2, 3, (4, 5)).astype(np.float64)
            bank = base[np.sort(rng.integers(0, 4, M))]  # long equal runs
            size = np.ones(M)
        group = merge_plan(bank, size, max_len)
        np.testing.assert_array_equal(group,
                                      greedy_plan(bank, size, max_len),
                                      err_msg=f'{kind} trial {trial}')


def test_merge_plan_ties_go_left():
    # All pairs tie at cosine 1: the leftmost entry absorbs its neighbours.
    bank = np.ones((5, 3))
    np.testing.assert_array_equal(merge_plan(bank, np.ones(5), 2),
                                  [0, 0, 0, 0, 1])
    np.testing.assert_array_equal(merge_plan(bank, np.ones(5), 9),
                                  np.arange(5))


def test_merge_groups_over_heads_equals_per_head_means():
    torch.manual_seed(0)
    values = torch.randn(2, 3, 7, 4)  # [B, h, M, d]
    size = torch.randint(1, 5, (2, 7)).float()
    group = torch.tensor([[0, 0, 1, 2, 2, 2, 3], [0, 1, 1, 1, 2, 3, 3]])
    out, out_size = merge_groups(values, size, group, 4)
    assert out.shape == (2, 3, 4, 4)
    for b in range(2):
        for g in range(4):
            sel = group[b] == g
            w = size[b, sel]
            torch.testing.assert_close(out_size[b, g], w.sum())
            ref = (values[b][:, sel] * w[:, None]).sum(1) / w.sum()
            torch.testing.assert_close(out[b, :, g], ref)


def reference_forward(attn, x, seg, size=None, memory=None, bank=None,
                      bank_size=None):
    """The plain algorithm: per segment, re-project [bank; segment] with
    ``qkv`` and attend to [memory; bank; segment] with the log-size bias;
    then compress the token-space bank (with gradients through it)."""
    B, N, C = x.shape
    h, d = attn.num_heads, attn.head_dims
    W, b = attn.qkv.weight, attn.qkv.bias

    def heads(t):
        return t.reshape(B, -1, h, d).transpose(1, 2)

    sizes = torch.ones(B, N) if size is None else size
    outs = []
    for start in range(0, N, seg):
        cur, cur_size = x[:, start:start + seg], sizes[:, start:start + seg]
        src, src_size = cur, cur_size
        if bank is not None:
            src = torch.cat([bank, cur], 1)
            src_size = torch.cat([bank_size, cur_size], 1)
        key_src, key_size = src, src_size
        if memory is not None:
            key_src = torch.cat([memory, src], 1)
            key_size = torch.cat([torch.ones(B, memory.shape[1]), src_size],
                                 1)
        q = heads(cur @ W[:C].T + b[:C])
        k = heads(key_src @ W[C:2 * C].T + b[C:2 * C])
        v = heads(key_src @ W[2 * C:].T + b[2 * C:])
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)
        logits = logits + key_size.log()[:, None, None, :]
        outs.append(logits.softmax(-1) @ v)
        bank, bank_size = naive_compress(src, src_size, attn.memory_size)
    out = torch.cat(outs, 2).transpose(1, 2).reshape(B, N, C)
    return attn.proj(out), bank, bank_size


def test_forward_and_gradients_equal_reprojecting_the_bank():
    """The bank's keys/values are merged from the tokens' keys/values with
    the greedy plan instead of re-projecting the bank every segment: the
    same outputs, bank and gradients (inputs, weights) as the plain
    algorithm, with a carried bank, input sizes and extra memory."""
    torch.manual_seed(0)
    attn = build(memory_size=6, carry_memory=True)
    x1 = torch.randn(2, 10, 16)
    with torch.no_grad():
        attn(x1, shape=(5, 1, 2))  # fills the carried bank
    bank, bank_size = attn.memory_bank
    x = torch.randn(2, 5 * 4, 16, requires_grad=True)
    size = torch.randint(1, 4, (2, 20)).float()
    memory = torch.randn(2, 3, 16, requires_grad=True)
    grad = torch.randn(2, 20, 16)

    out = attn(x, shape=(5, 2, 2), size=size, memory=memory)
    out.backward(grad)
    got = [x.grad, memory.grad] + [p.grad for p in attn.parameters()]
    new_bank, new_size = attn.memory_bank
    attn.zero_grad()
    x.grad = memory.grad = None

    ref, ref_bank, ref_size = reference_forward(attn, x, 4, size, memory,
                                                bank, bank_size)
    ref.backward(grad)
    want = [x.grad, memory.grad] + [p.grad for p in attn.parameters()]
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new_bank, ref_bank, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(new_size, ref_size)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, atol=1e-5, rtol=1e-5)


def test_backward_work_is_linear_in_n():
    """4x the tokens (4x the segments) allocate about 4x in forward +
    backward. Slicing each segment out of ``q/k/v`` would not: the backward
    of every slice writes a zero gradient of the full length."""

    def allocated(N):
        torch.manual_seed(0)
        attn = build(embed_dims=8, num_heads=1, memory_size=4,
                     segment_len=16)
        x = torch.randn(1, N, 8, requires_grad=True)
        with torch.profiler.profile(
                activities=[torch.profiler.ProfilerActivity.CPU],
                profile_memory=True) as prof:
            attn(x).sum().backward()
        return sum(max(e.cpu_memory_usage, 0) for e in prof.events())

    small, large = allocated(256), allocated(1024)
    assert large < 6 * small, (small, large)


def test_bad_arguments():
    with pytest.raises(ValueError, match='memory_size=0'):
        build(memory_size=0)
    with pytest.raises(ValueError, match='segment_len=0'):
        build(segment_len=0)
    with pytest.raises(ValueError, match=r'shape=\(2, 2, 2\) has 8'):
        build()(torch.randn(1, 6, 16), shape=(2, 2, 2))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('CrossMemoryAttention', config='cross_memory')

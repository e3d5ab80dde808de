import math

import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.attention.cross_memory_attention import compress_memory
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


def test_bad_arguments():
    with pytest.raises(ValueError, match='memory_size=0'):
        build(memory_size=0)
    with pytest.raises(ValueError, match='segment_len=0'):
        build(segment_len=0)
    with pytest.raises(ValueError, match=r'shape=\(2, 2, 2\) has 8'):
        build()(torch.randn(1, 6, 16), shape=(2, 2, 2))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('CrossMemoryAttention', config='cross_memory')

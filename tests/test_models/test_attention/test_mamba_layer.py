import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.models.attention import selective_scan as selective_scan_module
from hvlm.models.attention.selective_scan import selective_scan
from hvlm.registry import ATTENTIONS



def build(**kwargs):
    cfg = dict(type='MambaLayer', embed_dims=16, num_heads=2, d_state=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def sequential_scan(u, delta, A, B, C, D=None, z=None, h0=None):
    """The selective-scan recurrence, one token at a time, in float64."""
    b, L, d = u.shape
    h = torch.zeros(b, d, A.shape[1], dtype=torch.float64) \
        if h0 is None else h0.double()
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, t, :, None].double() * A.double()) * h + (
            delta[:, t] * u[:, t]).double()[..., None] * B[:, t,
                                                           None].double()
        ys.append((h * C[:, t, None].double()).sum(-1))
    y = torch.stack(ys, 1)
    if D is not None:
        y = y + u.double() * D.double()
    if z is not None:
        y = y * F.silu(z.double())
    return y, h


def scan_inputs(b=2, L=53, d=6, s=4, seed=0, harsh=False):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(b, L, d, generator=g)
    delta = torch.rand(b, L, d, generator=g) * (3. if harsh else 0.2)
    A = -torch.rand(d, s, generator=g) * (40. if harsh else 4.) - 0.1
    if harsh:
        A[0, 0] = -1e4  # a log-decay far below the float32 range
    B = torch.randn(b, L, s, generator=g)
    C = torch.randn(b, L, s, generator=g)
    return u, delta, A, B, C


@pytest.mark.parametrize('harsh', [False, True])
@pytest.mark.parametrize('block_size', [16, 64, 1, 7])
def test_scan_matches_sequential_recurrence(harsh, block_size):
    u, delta, A, B, C = scan_inputs(harsh=harsh)
    D, z = torch.randn(6), torch.randn(2, 53, 6)
    h0 = torch.randn(2, 6, 4)
    y, h = selective_scan(u, delta, A, B, C, D, z, initial_state=h0,
                          block_size=block_size)
    y_ref, h_ref = sequential_scan(u, delta, A, B, C, D, z, h0)
    torch.testing.assert_close(y.double(), y_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(h.double(), h_ref, atol=1e-4, rtol=1e-4)
    assert y.dtype == torch.float32


@pytest.mark.parametrize('harsh', [False, True])
@pytest.mark.parametrize('block_size', [8, 1, 64])
def test_scan_gradients_match_sequential_recurrence(harsh, block_size):
    """The hand-written backward against autograd through the recurrence,
    the carried-in state and the skip/gate included."""
    u, delta, A, B, C = scan_inputs(L=37, harsh=harsh)
    g = torch.Generator().manual_seed(1)
    D, z = torch.randn(6, generator=g), torch.randn(2, 37, 6, generator=g)
    h0 = torch.randn(2, 6, 4, generator=g)
    leaves = [t.double().requires_grad_()
              for t in (u, delta, A, B, C, D, z, h0)]
    y, h = selective_scan(*leaves[:7], initial_state=leaves[7],
                          block_size=block_size)
    y_ref, h_ref = sequential_scan(*leaves)
    g_y, g_h = torch.randn_like(y_ref), torch.randn_like(h_ref)
    grads = torch.autograd.grad((y * g_y).sum() + (h * g_h).sum(), leaves)
    ref = torch.autograd.grad((y_ref * g_y).sum() + (h_ref * g_h).sum(),
                              leaves)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_scan_delta_bias_and_softplus():
    u, delta, A, B, C = scan_inputs()
    bias = torch.randn(6)
    y, _ = selective_scan(u, delta, A, B, C, delta_bias=bias,
                          delta_softplus=True)
    y_ref, _ = sequential_scan(u, F.softplus(delta + bias), A, B, C)
    torch.testing.assert_close(y.double(), y_ref, atol=1e-4, rtol=1e-4)


def test_scan_chunk_by_chunk_equals_one_shot():
    u, delta, A, B, C = scan_inputs(L=100)
    y, h = selective_scan(u, delta, A, B, C, block_size=16)
    parts, state = [], None
    for part in (slice(0, 7), slice(7, 40), slice(40, 100)):
        y_part, state = selective_scan(
            u[:, part], delta[:, part], A, B[:, part], C[:, part],
            initial_state=state, block_size=16)
        parts.append(y_part)
    torch.testing.assert_close(torch.cat(parts, 1), y, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state, h, atol=1e-6, rtol=1e-6)


def test_scan_works_block_by_block(monkeypatch):
    """Linear in N: no [L, D, S] temporary, forward or backward; states are
    formed one block at a time."""
    seen = []
    block = selective_scan_module._block_states

    def spy(u, *args):
        seen.append(u.shape[0])
        return block(u, *args)

    monkeypatch.setattr(selective_scan_module, '_block_states', spy)
    u, delta, A, B, C = scan_inputs(b=1, L=1000, d=2)
    u.requires_grad_()
    y, _ = selective_scan(u, delta, A, B, C, block_size=64)
    assert max(seen) == 64 and sum(seen) == 1000
    y.sum().backward()
    assert max(seen) == 64 and sum(seen) == 2000


def reference_mamba(layer, x, size=None, reverse=False):
    """The reference Mamba block's forward written out: in_proj, causal
    depthwise conv (pad d_conv - 1, keep the first L), silu, x_proj,
    softplus(dt_proj), the sequential scan, the silu(z) gate."""
    s = '_b' if reverse else ''
    conv1d = getattr(layer, f'conv1d{s}')
    x_proj, dt_proj = getattr(layer, f'x_proj{s}'), getattr(
        layer, f'dt_proj{s}')
    A = -torch.exp(getattr(layer, f'A{s}_log'))
    L = x.shape[1]
    xs, z = layer.in_proj(x).chunk(2, dim=-1)
    if reverse:
        xs, z = xs.flip(1), z.flip(1)
        size = None if size is None else size.flip(1)
    u = F.silu(conv1d(xs.transpose(1, 2))[..., :L]).transpose(1, 2)
    dt, B, C = x_proj(u).split(
        [layer.dt_rank, layer.d_state, layer.d_state], dim=-1)
    delta = F.softplus(dt_proj(dt))
    if size is not None:
        delta = delta * size[..., None]
    y, _ = sequential_scan(u, delta, A, B, C, getattr(layer, f'D{s}'), z)
    return y.float().flip(1) if reverse else y.float()


def test_layer_has_the_reference_parameterisation():
    layer = build(embed_dims=32, d_state=16)  # d_inner 64, dt_rank 2
    expected = {
        'in_proj.weight': (128, 32),
        'conv1d.weight': (64, 1, 4),
        'conv1d.bias': (64, ),
        'x_proj.weight': (2 + 2 * 16, 64),
        'dt_proj.weight': (64, 2),
        'dt_proj.bias': (64, ),
        'A_log': (64, 16),
        'D': (64, ),
        'out_proj.weight': (32, 64),
    }
    assert {k: tuple(v.shape)
            for k, v in layer.state_dict().items()} == expected
    torch.testing.assert_close(layer.A_log[5].exp(),
                               torch.arange(1, 17).float())
    assert torch.equal(layer.D, torch.ones(64))
    dt = F.softplus(layer.dt_proj.bias)
    assert dt.min() >= 1e-3 * 0.999 and dt.max() <= 0.1 * 1.001
    assert layer.A_log._no_weight_decay and layer.D._no_weight_decay
    # A reference state dict (same keys) loads as is.
    other = build(embed_dims=32, d_state=16)
    other.load_state_dict(layer.state_dict())


@pytest.mark.parametrize('bidirectional', [False, True])
@pytest.mark.parametrize('use_size', [False, True])
def test_layer_matches_reference_forward(bidirectional, use_size):
    torch.manual_seed(0)
    layer = build(bidirectional=bidirectional, block_size=8)
    x = torch.randn(2, 21, 16)
    size = torch.randint(1, 4, (2, 21)).float() if use_size else None
    y = reference_mamba(layer, x, size)
    if bidirectional:
        y = (y + reference_mamba(layer, x, size, reverse=True)) / 2
    torch.testing.assert_close(layer(x, size=size), layer.out_proj(y),
                               atol=1e-4, rtol=1e-4)
    if not use_size:
        torch.testing.assert_close(layer(x, size=torch.ones(2, 21)),
                                   layer(x))


@pytest.mark.parametrize('bidirectional', [False, True])
def test_layer_gradients_match_reference(bidirectional):
    """Every parameter's gradient (conv, scan, skip, gate included)
    against autograd through the reference forward."""
    torch.manual_seed(0)
    layer = build(bidirectional=bidirectional, block_size=8)
    x = torch.randn(2, 21, 16, requires_grad=True)
    size = torch.randint(1, 4, (2, 21)).float()
    g = torch.randn(2, 21, 16)
    params = [x] + list(layer.parameters())
    grads = torch.autograd.grad((layer(x, size=size) * g).sum(), params)
    y = reference_mamba(layer, x, size)
    if bidirectional:
        y = (y + reference_mamba(layer, x, size, reverse=True)) / 2
    ref = torch.autograd.grad((layer.out_proj(y) * g).sum(), params)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_bidirectional_sees_the_future_and_causal_does_not():
    torch.manual_seed(0)
    for bidirectional, sees in ((False, False), (True, True)):
        layer = build(bidirectional=bidirectional)
        x = torch.randn(1, 12, 16, requires_grad=True)
        layer(x)[:, 0].sum().backward()
        assert bool(x.grad[:, -1].abs().sum() > 0) == sees


def test_layer_state_carries_across_clips():
    torch.manual_seed(0)
    layer = build(block_size=8).eval()
    x = torch.randn(2, 30, 16)
    one_shot, _ = layer.forward_with_state(x)
    torch.testing.assert_close(one_shot, layer(x))
    parts, state = [], None
    for part in (slice(0, 2), slice(2, 17), slice(17, 30)):
        y, state = layer.forward_with_state(x[:, part], state)
        parts.append(y)
    torch.testing.assert_close(torch.cat(parts, 1), one_shot, atol=1e-5,
                               rtol=1e-5)


@pytest.mark.parametrize('num_tokens', [64, 4096, 16384])
def test_long_sequences_stay_finite(num_tokens):
    torch.manual_seed(0)
    layer = build(embed_dims=8, num_heads=1, bidirectional=True)
    x = torch.randn(1, num_tokens, 8, requires_grad=True)
    out = layer(x)
    out.pow(2).mean().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert out.abs().max() < 1e3


def test_bf16_autocast_trains():
    torch.manual_seed(0)
    layer = build(bidirectional=True)
    x = torch.randn(2, 40, 16, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = layer(x, size=torch.full((2, 40), 2.))
    out.float().sum().backward()
    assert torch.isfinite(x.grad).all() and layer.A_log.grad is not None


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_path_matches_cpu():
    torch.manual_seed(0)
    layer = build(bidirectional=True)
    x = torch.randn(2, 300, 16)
    expected = layer(x)
    torch.testing.assert_close(
        layer.cuda()(x.cuda()).cpu(), expected, atol=1e-3, rtol=1e-3)


def test_bad_arguments():
    with pytest.raises(ValueError, match='attn_drop=0.1'):
        build(attn_drop=0.1)
    with pytest.raises(ValueError, match="dt_rank='big'"):
        build(dt_rank='big')
    with pytest.raises(ValueError, match='no memory'):
        build()(torch.randn(1, 4, 16), memory=torch.randn(1, 2, 16))
    with pytest.raises(ValueError, match='bidirectional=False'):
        build(bidirectional=True).forward_with_state(torch.randn(1, 4, 16))
    with pytest.raises(ValueError, match=r'size has shape \(1, 3\)'):
        build()(torch.randn(1, 4, 16), size=torch.ones(1, 3))
    u, delta, A, B, C = scan_inputs()
    with pytest.raises(ValueError, match='block_size=0'):
        selective_scan(u, delta, A, B, C, block_size=0)
    with pytest.raises(ValueError, match=r'B has shape \(2, 53, 3\)'):
        selective_scan(u, delta, A, B[..., :3], C)


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('MambaLayer', config='mamba')


def test_trains_with_options_in_the_main_model(check_train_step):
    check_train_step(
        'MambaLayer', attention=dict(type='MambaLayer', bidirectional=True))


def fused_inputs(b=2, L=13, di=3, s=2, r=1, k=3, seed=0,
                 dtype=torch.float64):
    """Tiny float64 leaves for :func:`mamba_inner`: padded, z, conv
    weight/bias, x_proj, dt_proj weight/bias, A, D, out_proj, size, h0."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=1.):
        return (torch.randn(*shape, generator=g) * scale).to(dtype)

    A = -(torch.rand(di, s, generator=g) * 2 + 0.2).to(dtype)
    size = (torch.rand(b, L, generator=g) + 0.5).to(dtype)
    return [rand(b, k - 1 + L, di), rand(b, L, di), rand(di, k, scale=.5),
            rand(di), rand(r + 2 * s, di, scale=.5), rand(di, r),
            rand(di, scale=.5), A, rand(di), rand(5, di), size,
            rand(b, di, s)]


@pytest.mark.parametrize('chunk,block_size,subs', [(256, 4, 1), (4, 2, 1),
                                                   (6, 4, 1), (256, 2, 4),
                                                   (256, 3, 3)])
def test_mamba_inner_gradcheck(monkeypatch, chunk, block_size, subs):
    """float64 gradcheck of the fused Function, with several chunks and
    blocks (a chunk of 6 with blocks of 4 rounds up to whole blocks), and
    with steps of the scan of ``subs`` blocks (whole and short ones)."""
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, 'CHUNK', chunk)
    monkeypatch.setattr(mamba_fused, '_scan_block_size',
                        lambda chunk, sub: sub * subs)
    leaves = [t.requires_grad_() for t in fused_inputs()]

    def fn(*args):
        out, state = mamba_fused.mamba_inner(
            *args[:10], size=args[10], initial_state=args[11], scale=0.5,
            block_size=block_size)
        return out, state.double()

    # The returned state is float32 by contract: check its gradient path
    # through the float64 Function directly below, and here only ``out``.
    assert torch.autograd.gradcheck(lambda *a: fn(*a)[0], leaves)
    h0 = leaves[11].detach().transpose(1, 2).contiguous().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda *a: mamba_fused._MambaInnerFn.apply(
            *a[:11], a[11], 0.5, block_size), leaves[:11] + [h0])


def unfused(monkeypatch, layer):
    """The layer as it was before fusing: separate conv, projections and
    :func:`selective_scan` (the path it still takes with mamba_ssm on a
    GPU)."""
    monkeypatch.setattr(type(layer), '_use_kernel', lambda *a: True)
    return layer


@pytest.mark.parametrize('bidirectional', [False, True])
@pytest.mark.parametrize('use_size', [False, True])
def test_fused_layer_equals_previous_implementation(monkeypatch,
                                                    bidirectional, use_size):
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, 'CHUNK', 16)  # several chunks
    torch.manual_seed(0)
    layer = build(bidirectional=bidirectional, block_size=4, bias=True)
    x = torch.randn(2, 45, 16, requires_grad=True)
    size = torch.randint(1, 4, (2, 45)).float() if use_size else None
    g = torch.randn(2, 45, 16)
    params = [x] + list(layer.parameters())
    out = layer(x, size=size)
    grads = torch.autograd.grad((out * g).sum(), params)
    with monkeypatch.context() as m:
        unfused(m, layer)
        ref_out = layer(x, size=size)
        ref = torch.autograd.grad((ref_out * g).sum(), params)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_fused_state_equals_previous_implementation(monkeypatch):
    torch.manual_seed(0)
    layer = build(block_size=4)
    x = torch.randn(2, 19, 16, requires_grad=True)
    _, state = layer.forward_with_state(x[:, :7])
    out, last = layer.forward_with_state(x[:, 7:], state)
    (out.sum() + last.ssm.sum()).backward()
    grad = x.grad
    x.grad = None
    with monkeypatch.context() as m:
        unfused(m, layer)
        _, ref_state = layer.forward_with_state(x[:, :7])
        ref_out, ref_last = layer.forward_with_state(x[:, 7:], ref_state)
        (ref_out.sum() + ref_last.ssm.sum()).backward()
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last.ssm, ref_last.ssm, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last.conv, ref_last.conv)
    torch.testing.assert_close(grad, x.grad, atol=1e-5, rtol=1e-5)


def test_training_keeps_two_activations_of_the_inner_width():
    """Memory: of the tensors autograd saves for the backward pass, only
    the conv input and the gate ``z`` are ``[N, D_inner]``-sized (the
    reference keeps six); the scan's start states add ``d_state /
    block_size`` of one."""
    layer = build(embed_dims=16, d_state=4, block_size=8)  # D_inner 32
    x = torch.randn(1, 64, 16, requires_grad=True)
    saved = {}

    def pack(t):
        saved[t.data_ptr()] = t.numel()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        layer(x)
    inner = 64 * 32
    assert sorted(n for n in saved.values() if n >= inner) == \
        [inner, inner + 3 * 32]  # z, padded ([K - 1 + N, D_inner])
    assert inner // 2 in saved.values()  # starts: 64 / 8 blocks x 4 x 32


def test_fused_batch_equals_each_sample(monkeypatch):
    """A batch of two (outputs and ``[B, L]`` slices not contiguous, a short
    last chunk) equals each sample alone (the contiguous, in-place path)."""
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, 'CHUNK', 8)
    torch.manual_seed(0)
    layer = build(block_size=4)
    x = torch.randn(2, 21, 16, requires_grad=True)
    g = torch.randn(2, 21, 16)
    params = list(layer.parameters())
    out = layer(x)
    grads = torch.autograd.grad((out * g).sum(), [x] + params)
    for i in range(2):
        xi = x[i:i + 1].detach().requires_grad_()
        out_i = layer(xi)
        torch.testing.assert_close(out_i, out[i:i + 1], atol=1e-6,
                                   rtol=1e-5)
        grads_i = torch.autograd.grad((out_i * g[i:i + 1]).sum(), xi)
        torch.testing.assert_close(grads_i[0], grads[0][i:i + 1],
                                   atol=1e-6, rtol=1e-5)


def test_workspace_reuses_contiguous_buffers():
    from hvlm.models.attention.mamba_fused import _Workspace
    ws = _Workspace(torch.empty(0), batch=2, chunk=8, width=3)
    full = ws('a', 8)
    short = ws('a', 5, time_major=True)
    assert full.shape == (2, 8, 3) and short.shape == (5, 2, 3)
    assert short.is_contiguous() and short.data_ptr() == full.data_ptr()
    assert ws('b', 8).data_ptr() != full.data_ptr()


def test_scan_buffers_accumulate_dA_over_blocks():
    """``dA`` is summed over the tokens once, at the end: equal to the
    gradient through the sequential recurrence with a short last block."""
    u, delta, A, B, C = scan_inputs(b=1, L=19)
    A = A.double().requires_grad_()
    y, _ = selective_scan(u.double(), delta.double(), A, B.double(),
                          C.double(), block_size=8)
    y_ref, _ = sequential_scan(u, delta, A, B, C)
    g = torch.randn_like(y_ref)
    grad, = torch.autograd.grad((y * g).sum(), A)
    ref, = torch.autograd.grad((y_ref * g).sum(), A)
    torch.testing.assert_close(grad, ref)


@pytest.mark.parametrize('threads', [1, 2])
def test_chunk_size_follows_short_sequences(monkeypatch, threads):
    """Chunks are whole blocks, never longer than the sequence (the
    buffers are sized by the chunk), ``L / CHUNKS`` tokens between
    ``MIN_CHUNK`` and ``CHUNK`` per thread: the chunk's buffers stay a
    small part of the peak memory at short sequences."""
    from hvlm.models.attention.mamba_fused import CHUNK, _chunk_size
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads)
    most = CHUNK * threads
    assert _chunk_size(1024, 16) == 64
    assert _chunk_size(16384, 16) == most
    assert _chunk_size(100, 16) == 32
    for L in range(1, 700, 13):
        for block_size in (1, 7, 16):
            T = min(block_size, L)
            chunk = _chunk_size(L, T)
            assert chunk % T == 0 and T <= chunk <= min(L, most)


def test_fused_layer_with_default_chunks_equals_previous(monkeypatch):
    """At the default chunk sizes (several chunks of ``L / 16`` tokens)."""
    torch.manual_seed(0)
    layer = build(block_size=8)
    x = torch.randn(1, 700, 16, requires_grad=True)
    params = [x] + list(layer.parameters())
    out = layer(x)
    grads = torch.autograd.grad(out.square().sum(), params)
    with monkeypatch.context() as m:
        unfused(m, layer)
        ref_out = layer(x)
        ref = torch.autograd.grad(ref_out.square().sum(), params)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('threads', [1, 2])
def test_scan_block_size_groups_blocks_in_long_chunks(monkeypatch, threads):
    """Steps of the scan are whole blocks, up to ``SCAN_SUBS`` of them per
    thread and at most a quarter of the chunk: 32 tokens per thread at the
    default 16k, one block at 1k (chunks of 64), so short sequences keep
    their memory."""
    from hvlm.models.attention.mamba_fused import (SCAN_SUBS, _chunk_size,
                                                   _scan_block_size)
    monkeypatch.setattr(torch, 'get_num_threads', lambda: threads)
    assert _scan_block_size(_chunk_size(16384, 16), 16) == \
        16 * SCAN_SUBS * threads
    assert _scan_block_size(_chunk_size(1024, 16), 16) == 16
    assert _scan_block_size(_chunk_size(2048, 16), 16) == 32
    for chunk in range(1, 300, 7):
        for sub in (1, 3, 16):
            T = _scan_block_size(chunk, sub)
            assert T % sub == 0 and sub <= T <= max(sub, chunk // 4)
            assert T <= sub * SCAN_SUBS * threads


@pytest.mark.parametrize('T', [16, 13, 9, 3])
def test_sub_block_chains_equal_one_chain(T):
    """The backward pass's recompute: sub-blocks of 4 tokens, each from its
    kept start state, side by side, equal one chain over the block, for a
    whole block and short ones (the last sub-block short or alone)."""
    from hvlm.models.attention.selective_scan import (_block_states,
                                                      _ScanBuffers)
    g = torch.Generator().manual_seed(0)
    b, d, s = 2, 5, 3
    u, delta = torch.randn(T, b, d, generator=g), torch.rand(T, b, d,
                                                              generator=g)
    A_t, B = -torch.rand(s, d, generator=g), torch.randn(T, b, s, generator=g)
    h0 = torch.randn(b, s, d, generator=g)
    one = _ScanBuffers(u[:1], 16, s, backward=True)
    _, ref = _block_states(u, delta, A_t, B, h0, one)
    subs = _ScanBuffers(u[:1], 16, s, backward=True, sub=4)
    starts = torch.stack([h0] + [ref[i] for i in range(3, T - 1, 4)])
    _, states = _block_states(u, delta, A_t, B, starts, subs)
    torch.testing.assert_close(states, ref)


def forced_steps(monkeypatch, subs):
    """Every step of the fused scan ``subs`` blocks long."""
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, '_scan_block_size',
                        lambda chunk, sub: sub * subs)


@pytest.mark.parametrize('subs', [2, 3, 4])
@pytest.mark.parametrize('bidirectional', [False, True])
def test_steps_of_several_blocks_equal_single_blocks(monkeypatch, subs,
                                                     bidirectional):
    """Steps of several blocks (the last of a chunk and of the sequence
    short, an odd inner width) give the outputs, gradients and carried
    state of steps of one block, in float64 up to rounding."""
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, 'CHUNK', 20)
    torch.manual_seed(0)
    layer = build(embed_dims=15, expand=1, block_size=3, bias=True,
                  bidirectional=bidirectional).double()
    x = torch.randn(2, 47, 15, dtype=torch.float64, requires_grad=True)
    size = torch.rand(2, 47, dtype=torch.float64) + 0.5
    g = torch.randn(2, 47, 15, dtype=torch.float64)
    params = [x] + list(layer.parameters())

    def run():
        out = layer(x, size=size)
        grads = torch.autograd.grad((out * g).sum(), params)
        if bidirectional:
            return [out, *grads]
        state = None
        for part in (slice(0, 10), slice(10, 47)):
            y, state = layer.forward_with_state(x[:, part], state)
        grads_state = torch.autograd.grad(
            (y * g[:, 10:]).sum() + state.ssm.sum(), params)
        return [out, *grads, y, state.ssm, *grads_state]

    with monkeypatch.context() as m:
        forced_steps(m, 1)
        ref = run()
    forced_steps(monkeypatch, subs)
    for a, b in zip(run(), ref):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_two_threads_equal_one(monkeypatch):
    """At the benchmark's width (``D_inner`` 1024, ``d_state`` 16), where
    with two threads the recompute's side-by-side update of four blocks is
    large enough for ATen to split: two threads give what one does (steps
    of two blocks), and what steps of one block do."""
    from hvlm.models.attention import mamba_fused
    monkeypatch.setattr(mamba_fused, 'MIN_CHUNK', 256)
    torch.manual_seed(0)
    layer = build(embed_dims=512, num_heads=8, d_state=16)
    x = torch.randn(1, 300, 512, requires_grad=True)
    g = torch.randn(1, 300, 512)
    params = [x] + list(layer.parameters())

    def run(threads):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            step = mamba_fused._scan_block_size(
                mamba_fused._chunk_size(300, 16), 16)
            assert step in (16, 16 * mamba_fused.SCAN_SUBS * threads)
            out = layer(x)
            return [out, *torch.autograd.grad((out * g).sum(), params)]
        finally:
            torch.set_num_threads(before)

    ref = run(1)
    for a, b in zip(run(2), ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    forced_steps(monkeypatch, 1)
    for a, b in zip(run(1), ref):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)

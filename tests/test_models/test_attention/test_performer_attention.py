import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS

from attention_reference import heads_of



def build(**kwargs):
    cfg = dict(type='PerformerAttention', embed_dims=32, num_heads=4,
               nb_features=64)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


def fast_attention_reference(q, k, v, projection, key_size=None):
    """performer-pytorch's ``FastAttention`` (softmax kernel, non-causal),
    written out here rather than installed: the package pulls
    local-attention, hyper-connections, torch-einops-utils and
    axial-positional-embedding, each declaring its own torch requirement.

    softmax_kernel: x' = d^-1/4 x; f = m^-1/2 (exp(W x' - |x'|^2/2 - max)
    + 1e-4), max per query row for queries, over the whole head for keys;
    then out = (f_q (f_k^T v)) / (f_q . sum_n f_k).
    """
    m, d = projection.shape

    def kernel(x, is_query):
        x = x * d**-0.25
        dash = torch.einsum('bhnd,md->bhnm', x, projection)
        diag = (x**2).sum(-1, keepdim=True) / 2
        if is_query:
            top = dash.max(dim=-1, keepdim=True).values
        else:
            top = dash.flatten(2).max(dim=-1).values[..., None, None]
        return m**-0.5 * (torch.exp(dash - diag - top.detach()) + 1e-4)

    fq, fk = kernel(q, True), kernel(k, False)
    if key_size is not None:
        fk = fk * key_size[:, None, :, None]
    context = torch.einsum('bhnm,bhne->bhme', fk, v)
    denom = torch.einsum('bhnm,bhm->bhn', fq, fk.sum(2))
    return torch.einsum('bhnm,bhme->bhne', fq, context) / denom[..., None]


def finish(attn, out):
    B, h, N, d = out.shape
    return attn.proj(out.transpose(1, 2).reshape(B, N, h * d))


@pytest.mark.parametrize('use_size', [False, True])
@pytest.mark.parametrize('use_memory', [False, True])
def test_matches_fast_attention_reference_and_gradients(use_size,
                                                        use_memory):
    torch.manual_seed(0)
    attn = build().eval()
    x = torch.randn(2, 9, 32, requires_grad=True)
    memory = torch.randn(2, 3, 32) if use_memory else None
    size = torch.randint(1, 5, (2, 9)).float() if use_size else None
    out = attn(x, size=size, memory=memory)
    q, k, v = heads_of(attn, x, memory)
    key_size = None
    if use_size:
        key_size = size if memory is None else torch.cat(
            [torch.ones(2, 3), size], 1)
    ref = finish(attn,
                 fast_attention_reference(q, k, v, attn.projection,
                                          key_size))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), [x, attn.qkv.weight])
    ref_grads = torch.autograd.grad((ref * g).sum(), [x, attn.qkv.weight])
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_projection_rows_are_orthogonal_in_blocks():
    attn = build(embed_dims=64, num_heads=4, nb_features=40)  # d = 16
    w = attn.projection  # [40, 16]
    block = w[:16] / w[:16].norm(dim=1, keepdim=True)
    torch.testing.assert_close(block @ block.T, torch.eye(16), atol=1e-5,
                               rtol=0)
    assert w.shape == (40, 16)


def test_converges_to_softmax_attention_as_features_grow():
    """The FAVOR+ estimate is unbiased; its error must shrink with m."""
    torch.manual_seed(0)
    x = torch.randn(1, 64, 32) * 0.5
    errors = []
    for m in (8, 64, 512, 4096):
        trials = []
        for seed in range(3):
            torch.manual_seed(seed)
            attn = build(nb_features=m).eval()
            q, k, v = heads_of(attn, x)
            exact = torch.softmax(
                q @ k.transpose(-1, -2) / attn.head_dims**0.5, -1) @ v
            with torch.no_grad():
                approx = fast_attention_reference(q, k, v, attn.projection)
                out = attn(x)
            torch.testing.assert_close(
                out, finish(attn, approx), atol=1e-5, rtol=1e-5)
            trials.append(((approx - exact).norm() / exact.norm()).item())
        errors.append(sum(trials) / len(trials))
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.05, errors


def test_size_acts_like_duplicated_keys():
    torch.manual_seed(0)
    attn = build().eval()
    x = torch.randn(1, 4, 32)
    dup = torch.cat([x, x[:, 3:], x[:, 3:]], 1)  # token 3 three times
    out_dup = attn(dup)[:, :3]
    out_size = attn(x, size=torch.tensor([[1., 1., 1., 3.]]))[:, :3]
    torch.testing.assert_close(out_size, out_dup, atol=1e-5, rtol=1e-5)


def test_feature_redraw_only_in_training():
    torch.manual_seed(0)
    attn = build(redraw_interval=2)
    x = torch.randn(1, 5, 32)
    first = attn.projection.clone()
    attn.eval()
    for _ in range(3):
        attn(x)
    assert torch.equal(attn.projection, first)
    attn.train()
    attn(x)
    attn(x)
    assert torch.equal(attn.projection, first)
    attn(x)  # the third training call redraws
    assert not torch.equal(attn.projection, first)
    assert 'projection' in attn.state_dict()
    never = build(redraw_interval=None).train()
    kept = never.projection.clone()
    for _ in range(3):
        never(x)
    assert torch.equal(never.projection, kept)


def test_key_dropout_keeps_outputs_finite_and_is_off_in_eval():
    torch.manual_seed(0)
    attn = build(attn_drop=0.5, redraw_interval=None)
    x = torch.randn(2, 16, 32)
    train_out = attn(x)
    attn.eval()
    assert torch.isfinite(train_out).all()
    torch.testing.assert_close(attn(x), attn(x))
    assert not torch.allclose(train_out, attn(x))


def test_stable_with_large_logits_and_bf16_autocast():
    torch.manual_seed(0)
    attn = build()
    x = (torch.randn(1, 128, 32) * 30).requires_grad_()
    out = attn(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x)
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match='nb_features=0'):
        build(nb_features=0)
    with pytest.raises(ValueError, match='redraw_interval=-1'):
        build(redraw_interval=-1)
    with pytest.raises(ValueError, match=r'size has shape \(1, 3\)'):
        build()(torch.randn(1, 4, 32), size=torch.ones(1, 3))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('PerformerAttention', config='performer')


def test_trains_with_options_in_the_main_model(check_train_step):
    check_train_step(
        'PerformerAttention',
        attention=dict(type='PerformerAttention', nb_features=32))


def _favor_previous(qkv, projection, mem_k=None, mem_v=None,
                    key_weight=None):
    """The module's previous formulation: feature maps of all tokens, then
    normalised linear attention (autograd through both)."""
    from hvlm.models.attention.feature_maps import (
        normalised_linear_attention, positive_random_features)
    B, N, _, h, d = qkv.shape
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, h, N, d]
    if mem_k is not None:
        k, v = torch.cat([mem_k, k], 2), torch.cat([mem_v, v], 2)
    q_feats = positive_random_features(q, projection, is_query=True)
    k_feats = positive_random_features(k, projection, is_query=False)
    if key_weight is not None:
        k_feats = k_feats * key_weight[..., None]
    out = normalised_linear_attention(q_feats, k_feats, v)  # [B, h, N, d]
    return out.transpose(1, 2).reshape(B, N, h * d)


@pytest.mark.parametrize('chunk_size', [1, 3, 7, None])
@pytest.mark.parametrize('use_memory', [False, True])
@pytest.mark.parametrize('weight_heads', [0, 1, 2])
def test_favor_attention_equals_previous_formulation(chunk_size, use_memory,
                                                      weight_heads):
    """Chunked FAVOR+ (running key stabiliser, recomputed features) gives
    the outputs and gradients of the plain formulation, large logits
    included (the key maximum then moves between chunks)."""
    from hvlm.models.attention.performer_attention import favor_attention
    torch.manual_seed(chunk_size or 0)
    B, N, h, d, m, M = 2, 11, 2, 8, 12, 3
    qkv = (torch.randn(B, N, 3, h, d) * 3).requires_grad_()
    from hvlm.models.attention.feature_maps import orthogonal_gaussian_matrix
    projection = orthogonal_gaussian_matrix(m, d)
    mem_k = mem_v = None
    if use_memory:
        mem_k = torch.randn(B, h, M, d, requires_grad=True)
        mem_v = torch.randn(B, h, M, d, requires_grad=True)
    key_weight = None
    if weight_heads:
        key_weight = (torch.rand(B, weight_heads, N + M * use_memory) +
                      0.5).requires_grad_()
    inputs = [t for t in (qkv, mem_k, mem_v, key_weight) if t is not None]
    out = favor_attention(qkv, projection, mem_k, mem_v, key_weight,
                          chunk_size=chunk_size)
    ref = _favor_previous(qkv, projection, mem_k, mem_v, key_weight)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    grads = torch.autograd.grad((out * g).sum(), inputs)
    ref_grads = torch.autograd.grad((ref * g).sum(), inputs)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize('use_memory', [False, True])
def test_favor_attention_gradcheck(use_memory, monkeypatch):
    """float64 gradcheck with eps = 0: the stabilisers are detached (as in
    FAVOR+), which is exact only when nothing is added after exp(); the
    eps terms are checked against the plain formulation above."""
    from hvlm.models.attention import performer_attention
    from hvlm.models.attention.feature_maps import orthogonal_gaussian_matrix
    from hvlm.models.attention.performer_attention import favor_attention
    monkeypatch.setattr(performer_attention, '_EPS', 0.)
    torch.manual_seed(0)
    B, N, h, d, m, M = 1, 5, 2, 3, 4, 2
    dt = torch.float64
    qkv = torch.randn(B, N, 3, h, d, dtype=dt, requires_grad=True)
    projection = orthogonal_gaussian_matrix(m, d).to(dt)
    mem_k = torch.randn(B, h, M, d, dtype=dt, requires_grad=use_memory)
    mem_v = torch.randn(B, h, M, d, dtype=dt, requires_grad=use_memory)
    weight = (torch.rand(B, h, N + M * use_memory, dtype=dt) +
              0.5).requires_grad_()

    def fn(qkv, weight, mem_k, mem_v):
        return favor_attention(qkv, projection,
                               mem_k if use_memory else None,
                               mem_v if use_memory else None, weight,
                               chunk_size=2)

    assert torch.autograd.gradcheck(fn, (qkv, weight, mem_k, mem_v))


def test_training_memory_keeps_no_feature_map():
    """Saved for backward: nothing of size [B, h, N, m] (the features)."""
    torch.manual_seed(0)
    attn = build(embed_dims=32, num_heads=2, nb_features=64).train()
    B, N = 1, 256
    x = torch.randn(B, N, 32, requires_grad=True)
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        attn(x).sum().backward()
    assert max(sizes) < 2 * N * 64, sizes  # feature maps: 2 * N * 64

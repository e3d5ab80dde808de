import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS

from attention_reference import heads_of


def build(**kwargs):
    cfg = dict(type='LinearAttentionBlock', embed_dims=32, num_heads=4)
    cfg.update(kwargs)
    return ATTENTIONS.build(cfg)


PHI = {'elu': lambda t: F.elu(t) + 1, 'relu': F.relu}


def reference(attn, x, size=None, memory=None):
    """Explicit N x M kernel matrix phi(Q) phi(K)^T, row-normalised, and a
    dense block-diagonal masked softmax for the local branch."""
    B, N, C = x.shape
    q, k, v = heads_of(attn, x, memory)
    M = k.shape[2] - N
    phi = PHI[attn.kernel_type]
    kernel = phi(q) @ phi(k).transpose(-1, -2)  # [B, h, N, M + N]
    key_size = torch.ones(B, M + N)
    if size is not None:
        key_size[:, M:] = size
    kernel = kernel * key_size[:, None, None, :]
    out = kernel @ v / (kernel.sum(-1, keepdim=True) + attn.eps)
    if attn.local_window is not None:
        w = attn.local_window
        idx = torch.arange(N)
        same = (idx[:, None] // w) == (idx[None, :] // w)  # [N, N]
        logits = q @ k[:, :, M:].transpose(-1, -2) / attn.head_dims**0.5
        logits = logits + key_size[:, None, None, M:].log()
        logits = logits.masked_fill(~same, float('-inf'))
        local = logits.softmax(-1) @ v[:, :, M:]
        g = attn.local_gate.sigmoid()[:, None, None]
        out = g * local + (1 - g) * out
    out = out.transpose(1, 2).reshape(B, N, C)
    return attn.proj(out)


@pytest.mark.parametrize('kernel_type', ['elu', 'relu'])
@pytest.mark.parametrize('local_window', [None, 4])
@pytest.mark.parametrize('use_size,use_memory', [(False, False),
                                                 (True, True)])
def test_matches_explicit_kernel_matrices_and_gradients(
        kernel_type, local_window, use_size, use_memory):
    torch.manual_seed(0)
    attn = build(kernel_type=kernel_type, local_window=local_window)
    if local_window is not None:
        with torch.no_grad():
            attn.local_gate.copy_(torch.randn(4))
    x = torch.randn(2, 10, 32, requires_grad=True)  # 10: last window padded
    size = torch.randint(1, 5, (2, 10)).float() if use_size else None
    memory = torch.randn(2, 3, 32) if use_memory else None
    out = attn(x, size=size, memory=memory)
    ref = reference(attn, x, size, memory)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    g = torch.randn_like(out)
    params = [x, attn.qkv.weight] + (
        [attn.local_gate] if local_window else [])
    grads = torch.autograd.grad((out * g).sum(), params)
    ref_grads = torch.autograd.grad((ref * g).sum(), params)
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_window_covering_everything_is_full_attention():
    """local_window >= N with the gate saturated on the local branch is
    exactly softmax attention over all tokens (with proportional sizes)."""
    torch.manual_seed(0)
    attn = build(local_window=16)
    full = ATTENTIONS.build(dict(type='FullAttention', embed_dims=32,
                                 num_heads=4))
    full.load_state_dict(attn.state_dict(), strict=False)
    with torch.no_grad():
        attn.local_gate.fill_(40.)  # sigmoid = 1 in float32
    x = torch.randn(2, 11, 32)
    size = torch.randint(1, 4, (2, 11)).float()
    torch.testing.assert_close(attn(x, size=size), full(x, size=size),
                               atol=1e-5, rtol=1e-5)


def test_local_branch_never_builds_an_n_by_n_matrix(monkeypatch):
    shapes = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        shapes.append((tuple(q.shape), None if attn_mask is None else tuple(
            attn_mask.shape)))
        return sdpa(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, 'scaled_dot_product_attention', spy)
    attn = build(local_window=8)
    attn(torch.randn(1, 60, 32), size=torch.ones(1, 60))
    assert shapes == [((1, 4 * 8, 8, 8), (1, 4 * 8, 1, 8))]


def test_bf16_autocast_and_dropout_train():
    torch.manual_seed(0)
    attn = build(local_window=4, attn_drop=0.2)
    x = torch.randn(2, 12, 32, requires_grad=True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = attn(x)
    out.float().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert attn.local_gate.grad is not None


def test_bad_arguments():
    with pytest.raises(ValueError, match="kernel_type='cosine'"):
        build(kernel_type='cosine')
    with pytest.raises(ValueError, match='local_window=0'):
        build(local_window=0)
    with pytest.raises(ValueError, match='memory has shape'):
        build()(torch.randn(1, 4, 32), memory=torch.randn(1, 2, 16))


def test_its_config_trains_the_main_model(check_train_step):
    check_train_step('LinearAttentionBlock', config='linear')


def test_trains_with_options_in_the_main_model(check_train_step):
    check_train_step(
        'LinearAttentionBlock',
        attention=dict(type='LinearAttentionBlock', local_window=16))

"""LoRALinear against the LoRA definition ``W x + b + (alpha/r) B A x``."""
import pytest
import torch
import torch.nn as nn

from hvlm.models.adapters import LoRALinear

DOMAINS = ('general', 'sports', 'news')


def randomised(layer: LoRALinear, seed=0) -> LoRALinear:
    """Give every B a non-zero value (B = 0 at init would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for d in layer.domains:
            layer.lora_B[d].copy_(torch.randn(layer.lora_B[d].shape,
                                              generator=g))
    return layer


def reference(layer, x, domain):
    W, b = layer.weight, layer.bias
    A, B = layer.lora_A[domain], layer.lora_B[domain]
    return x @ W.T + b + (layer.alpha / layer.rank) * (x @ A.T) @ B.T


def make(rank=4, alpha=8., **kw):
    torch.manual_seed(0)
    base = nn.Linear(6, 5)
    return base, LoRALinear.from_linear(base, DOMAINS, rank=rank,
                                        alpha=alpha, dropout=0., **kw)


def test_identity_at_init_and_shares_base_weights():
    base, layer = make()
    assert layer.weight is base.weight and layer.bias is base.bias
    x = torch.randn(3, 7, 6)
    for d in DOMAINS:
        layer.selection.set(d)
        assert torch.equal(layer(x), base(x))  # B = 0 exactly
    assert all(torch.count_nonzero(layer.lora_A[d]) > 0 for d in DOMAINS)


@pytest.mark.parametrize('rank,alpha', [(1, 1.), (4, 8.), (8, 16.)])
def test_matches_definition_for_one_domain(rank, alpha):
    _, layer = make(rank, alpha)
    randomised(layer)
    x = torch.randn(2, 9, 6)
    for d in DOMAINS:
        layer.selection.set(d)
        torch.testing.assert_close(layer(x), reference(layer, x, d))
    layer.selection.set(None)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)


def test_per_sample_ids_gather_each_samples_domain():
    _, layer = make()
    randomised(layer)
    x = torch.randn(4, 3, 6)
    ids = torch.tensor([2, -1, 0, 2])
    layer.selection.set(ids)
    assert layer.selection.ids is not None  # mixed: per-sample path
    out = layer(x)
    for i, d in enumerate(ids.tolist()):
        want = x[i] @ layer.weight.T + layer.bias if d < 0 else \
            reference(layer, x[i], DOMAINS[d])
        torch.testing.assert_close(out[i], want)


def test_blend_is_weighted_sum_of_updates():
    _, layer = make()
    randomised(layer)
    x = torch.randn(2, 3, 6)
    w = torch.tensor([[0.2, 0.5, 0.3], [0., 1., 0.]])
    layer.selection.set(w)
    out = layer(x)
    base = x @ layer.weight.T + layer.bias
    for i in range(2):
        want = base[i] + sum(
            w[i, j] * (reference(layer, x[i], d) - base[i])
            for j, d in enumerate(DOMAINS))
        torch.testing.assert_close(out[i], want)


def test_gradients_reach_only_the_selected_domains():
    _, layer = make()
    randomised(layer)
    layer.selection.set(torch.tensor([0, 2, 2]))
    layer(torch.randn(3, 4, 6)).square().sum().backward()
    assert layer.lora_B['general'].grad.abs().sum() > 0
    assert layer.lora_B['news'].grad.abs().sum() > 0
    assert layer.lora_B['sports'].grad is None or \
        layer.lora_B['sports'].grad.abs().sum() == 0


def test_merge_matches_and_unmerge_is_exact():
    _, layer = make()
    randomised(layer)
    before = layer.weight.detach().clone()
    x = torch.randn(2, 5, 6)
    layer.selection.set('sports')
    unmerged = layer(x)
    layer.merge('sports')
    torch.testing.assert_close(
        layer.weight, before + 2. * layer.lora_B['sports']
        @ layer.lora_A['sports'])
    torch.testing.assert_close(layer(x), unmerged)
    layer.selection.set('news')
    with pytest.raises(RuntimeError, match="'sports' is merged"):
        layer(x)
    with pytest.raises(RuntimeError, match='already merged'):
        layer.merge('news')
    layer.unmerge()
    assert torch.equal(layer.weight, before)


def test_dropout_only_on_the_low_rank_path():
    torch.manual_seed(0)
    layer = randomised(LoRALinear(6, 5, DOMAINS, rank=2, dropout=0.5))
    layer.train()
    layer.selection.set(None)
    x = torch.randn(3, 6)
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)
    layer.selection.set('news')
    layer.eval()
    torch.testing.assert_close(layer(x), reference(layer, x, 'news'))


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match='rank=0'):
        LoRALinear(4, 4, DOMAINS, rank=0)
    with pytest.raises(ValueError, match='distinct'):
        LoRALinear(4, 4, ('a', 'a'))
    _, layer = make()
    with pytest.raises(KeyError, match="unknown domain 'golf'"):
        layer.selection.set('golf')
    with pytest.raises(ValueError, match=r'\[-1, 2\]'):
        layer.selection.set(torch.tensor([0, 3]))
    layer.selection.set(torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r'expected \[3\]'):
        layer(torch.randn(3, 6))


@pytest.mark.parametrize('spec', ['news', torch.tensor([2, 0, 2])])
def test_gradients_match_the_definition(spec):
    _, layer = make()
    randomised(layer)
    x = torch.randn(3, 4, 6, requires_grad=True)
    layer.selection.set(spec)
    out = layer(x)
    grads = torch.autograd.grad(out.square().sum(),
                                [x, layer.lora_A['news'], layer.weight])
    ids = [2, 2, 2] if isinstance(spec, str) else spec.tolist()
    want = torch.stack([reference(layer, x[i], DOMAINS[d])
                        for i, d in enumerate(ids)])
    torch.testing.assert_close(out, want)
    ref = torch.autograd.grad(want.square().sum(),
                              [x, layer.lora_A['news'], layer.weight])
    for g, r in zip(grads, ref):
        torch.testing.assert_close(g, r)


@pytest.mark.parametrize('spec', ['news', torch.tensor([2, 0, -1]),
                                  torch.tensor([[.5, .5, 0.]] * 3)])
def test_runs_under_bf16_autocast(spec):
    _, layer = make()
    randomised(layer)
    x = torch.randn(3, 4, 6)
    layer.selection.set(spec)
    want = layer(x)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        got = layer(x)
    got.float().sum().backward()
    torch.testing.assert_close(got.float(), want, atol=0.1, rtol=0.05)

"""LoRAAdapter injected into a real encoder, built through the registries."""
import copy
import os

import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.models.adapters import LoRALinear
from hvlm.registry import ADAPTERS, MODELS

DOMAINS = ('general', 'sports', 'tutorials', 'news')


def encoder():
    torch.manual_seed(0)
    return MODELS.build(
        dict(type='HierarchicalVideoEncoder', patch_size=(2, 4, 4),
             embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 4),
             drop_path_rate=0.)).eval()


def adapter(**kw):
    cfg = dict(type='LoRAAdapter', domains=DOMAINS, rank=4, alpha=8.,
               dropout=0.)
    cfg.update(kw)
    return ADAPTERS.build(cfg)


def randomise(ad, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in ad.lora_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def clips(n=3):
    return torch.randn(n, 3, 4, 16, 16, generator=torch.Generator()
                       .manual_seed(1))


def test_injects_attention_and_mlp_linears_only():
    enc = encoder()
    names = adapter().inject(enc)
    assert sorted(names) == sorted(
        f'stages.{s}.0.{m}' for s in (0, 1)
        for m in ('attn.qkv', 'attn.proj', 'mlp.fc1', 'mlp.fc2'))
    assert all(isinstance(enc.get_submodule(n), LoRALinear) for n in names)
    assert type(enc.transitions[0][0]) is torch.nn.Linear
    # defaults of the original: rank 8, alpha 16, dropout 0.05
    ad = ADAPTERS.build(dict(type='LoRAAdapter'))
    assert (ad.rank, ad.alpha, ad.dropout) == (8, 16., 0.05)
    with pytest.raises(ValueError, match=r"target_modules=\('nope',\) match"):
        adapter(target_modules=('nope', )).inject(encoder())


def test_same_output_at_init_and_base_state_dict_loads():
    enc = encoder()
    base = copy.deepcopy(enc)
    ad = adapter()
    ad.inject(enc)
    x = clips()
    for spec in (None, 'sports', torch.tensor([0, 3, -1])):
        ad.select(spec)
        assert torch.equal(enc(x).tokens, base(x).tokens)
    # the base model's checkpoint loads: only LoRA keys are new
    missing, unexpected = enc.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing and all('lora_' in k for k in missing)


def test_per_sample_mix_equals_each_sample_alone():
    enc = encoder()
    ad = adapter()
    ad.inject(enc)
    randomise(ad)
    x = clips(4)
    ids = torch.tensor([1, 3, -1, 1])
    ad.select(ids)
    mixed = enc(x).tokens
    for i, d in enumerate(ids.tolist()):
        ad.select(None if d < 0 else DOMAINS[d])
        alone = enc(x[i:i + 1]).tokens
        torch.testing.assert_close(mixed[i:i + 1], alone)
    # per-sample names work too, and differ between domains
    ad.select(['sports', 'news', 'general', 'sports'])
    assert not torch.allclose(enc(x).tokens[0], enc(x).tokens[1])


def test_merged_equals_unmerged_and_unmerge_restores_weights():
    enc = encoder()
    ad = adapter()
    ad.inject(enc)
    randomise(ad)
    weights = {n: l.weight.detach().clone() for n, l in ad.layers.items()}
    x = clips()
    ad.select('tutorials')
    want = enc(x).tokens
    ad.merge('tutorials')
    assert ad.merged_domain == 'tutorials'
    torch.testing.assert_close(enc(x).tokens, want, rtol=1e-5, atol=1e-5)
    ad.unmerge()
    assert ad.merged_domain is None
    assert all(torch.equal(l.weight, weights[n])
               for n, l in ad.layers.items())
    torch.testing.assert_close(enc(x).tokens, want)


def test_save_load_one_domain_round_trip(tmp_path):
    enc = encoder()
    ad = adapter()
    ad.inject(enc)
    randomise(ad)
    path = str(tmp_path / 'sports.pth')
    ad.save(path, 'sports')
    raw = torch.load(path, weights_only=True)
    assert raw['domain'] == 'sports' and raw['rank'] == 4
    n_lora = sum(p.numel() for p in ad.lora_parameters(['sports']))
    assert sum(v.numel() for v in raw['state_dict'].values()) == n_lora
    # only the adapter: far smaller than the backbone
    backbone_bytes = sum(p.numel() * 4 for p in enc.parameters())
    assert os.path.getsize(path) < n_lora * 4 + 20_000 < backbone_bytes
    x = clips()
    ad.select('sports')
    want = enc(x).tokens

    fresh = encoder()  # same base weights (same seed), new LoRA factors
    ad2 = adapter()
    ad2.inject(fresh)
    ad2.select('sports')
    assert not torch.allclose(fresh(x).tokens, want)
    assert ad2.load(path) == 'sports'
    torch.testing.assert_close(fresh(x).tokens, want)
    # into another domain name
    ad2.load(path, domain='news')
    ad2.select('news')
    torch.testing.assert_close(fresh(x).tokens, want)

    other = adapter(rank=2)
    other.inject(encoder())
    with pytest.raises(ValueError, match='rank=4, alpha=8.0; this adapter '
                       'has rank=2'):
        other.load(path)
    attn_only = adapter(target_modules=('attn', ))
    attn_only.inject(encoder())
    with pytest.raises(ValueError, match='does not fit this model'):
        attn_only.load(path)


def test_freeze_leaves_only_the_trained_domain():
    enc = encoder()
    ad = adapter(freeze_base=True, train_domains=['news'],
                 trainable_modules=[r'^norm\.'])
    ad.inject(enc)
    trainable = ad.freeze(enc)
    assert trainable == [n for n, p in enc.named_parameters()
                         if p.requires_grad]
    assert sorted(trainable) == sorted(
        [f'{n}.lora_{m}.news' for n in ad.layers for m in 'AB'] +
        ['norm.weight', 'norm.bias'])
    with pytest.raises(ValueError, match="train_domains has \\['golf'\\]"):
        adapter(train_domains=['golf'])


def test_activation_checkpointing_recomputes_with_the_same_domains():
    """The selection stays set after forward, so blocks recomputed in the
    backward pass (with_cp) use the same per-sample domains."""
    grads = []
    for with_cp in (False, True):
        torch.manual_seed(0)
        enc = MODELS.build(
            dict(type='HierarchicalVideoEncoder', patch_size=(2, 4, 4),
                 embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 4),
                 drop_path_rate=0., with_cp=with_cp))
        ad = adapter()
        ad.inject(enc)
        randomise(ad)
        ad.select(torch.tensor([1, 3, 0]))
        enc(clips()).tokens.square().sum().backward()
        grads.append([p.grad.clone() for p in ad.lora_parameters(
            ['sports', 'news'])])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)

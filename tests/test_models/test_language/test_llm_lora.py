"""Per-domain LoRA inside HFCausalLM, and its PEFT files both ways."""
import json

import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import MODELS

TARGETS = dict(llama=('q_proj', 'v_proj'), qwen2=('q_proj', 'v_proj'),
               gpt2=('c_attn', ))


def build(path, family, **lora):
    lora = dict(dict(domains=('sports', 'news'),
                     target_modules=TARGETS[family], rank=2, alpha=6.,
                     dropout=0.), **lora)
    return MODELS.build(dict(type='HFCausalLM', pretrained=path, lora=lora))


def randomise(lm, seed=0):
    """Non-zero B factors (at init LoRA is the identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lm.adapter.lora_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)


def inputs(lm):
    a, b = lm.encode('question: what does the person do?'), lm.encode(
        'caption: what happens first?')
    ids = torch.tensor([a[:6], b[:6]])
    return lm.embed(ids), torch.ones_like(ids)


@pytest.mark.parametrize('family', ['llama', 'gpt2'])
def test_lora_trains_alone_and_merged_equals_unmerged(lm_dirs, family):
    path, ref = lm_dirs[family]
    lm = build(path, family, train_domains=('sports', ))
    assert len(lm.adapter.layers) == 2 * len(TARGETS[family])  # 2 layers
    trainable = {n for n, p in lm.named_parameters() if p.requires_grad}
    assert trainable and all('lora_' in n and n.endswith('.sports')
                             for n in trainable)
    embeds, mask = inputs(lm)
    # at init the LoRA path is zero: the pretrained model's output,
    # GPT-2's Conv1D included (turned into an equal nn.Linear)
    with torch.no_grad():
        base = ref(inputs_embeds=embeds, attention_mask=mask).logits
        out, _ = lm(embeds, mask, domain_ids=torch.tensor([0, 1]))
    torch.testing.assert_close(out, base, atol=1e-5, rtol=0)
    randomise(lm)
    with torch.no_grad():
        unmerged, _ = lm(embeds, mask, domain_ids=torch.tensor([1, 1]))
        mixed, _ = lm(embeds, mask, domain_ids=torch.tensor([0, 1]))
        lm.adapter.merge('news')
        merged, _ = lm(embeds, mask, domain_ids=torch.tensor([1, 1]))
        lm.adapter.unmerge()
        again, _ = lm(embeds, mask, domain_ids=torch.tensor([1, 1]))
    assert (unmerged - base).abs().max() > 1e-2  # the adapter does act
    torch.testing.assert_close(merged, unmerged, atol=1e-5, rtol=0)
    assert torch.equal(again, unmerged)
    torch.testing.assert_close(mixed[1], unmerged[1], atol=1e-5, rtol=0)
    assert not torch.allclose(mixed[0], unmerged[0])


@pytest.mark.parametrize('family', ['qwen2', 'gpt2'])
def test_peft_made_adapter_gives_the_same_outputs_and_round_trips(
        lm_dirs, family, tmp_path):
    peft = pytest.importorskip('peft')
    path, _ = lm_dirs[family]
    from transformers import AutoModelForCausalLM
    base = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    config = peft.LoraConfig(
        r=2, lora_alpha=6, lora_dropout=0., target_modules=list(
            TARGETS[family]), init_lora_weights=False,
        fan_in_fan_out=family == 'gpt2', task_type='CAUSAL_LM')
    trained = peft.get_peft_model(base, config).eval()
    trained.save_pretrained(tmp_path / 'peft')
    lm = build(path, family).eval()
    lm.load_adapter(str(tmp_path / 'peft'), 'news')
    embeds, mask = inputs(lm)
    with torch.no_grad():
        expected = trained(inputs_embeds=embeds, attention_mask=mask).logits
        ours, _ = lm(embeds, mask, domain_ids=torch.tensor([1, 1]))
        untouched, _ = lm(embeds, mask, domain_ids=torch.tensor([0, 0]))
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)
    assert (untouched - expected).abs().max() > 1e-2
    # back: hvlm's file holds PEFT's tensors bit for bit, and PEFT loads it
    lm.save_adapter(str(tmp_path / 'hvlm'), 'news')
    from safetensors.torch import load_file
    theirs = load_file(tmp_path / 'peft' / 'adapter_model.safetensors')
    mine = load_file(tmp_path / 'hvlm' / 'adapter_model.safetensors')
    assert theirs.keys() == mine.keys()
    assert all(torch.equal(theirs[k], mine[k]) for k in theirs)
    cfg = json.loads((tmp_path / 'hvlm' / 'adapter_config.json').read_text())
    assert cfg['target_modules'] == list(TARGETS[family])
    fresh = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
    reloaded = peft.PeftModel.from_pretrained(fresh,
                                              str(tmp_path / 'hvlm')).eval()
    with torch.no_grad():
        back = reloaded(inputs_embeds=embeds, attention_mask=mask).logits
    assert torch.equal(back, expected)


def test_peft_file_that_does_not_fit_is_named(lm_dirs, tmp_path):
    path = lm_dirs['llama'][0]
    lm = build(path, 'llama')
    lm.save_adapter(str(tmp_path / 'a'), 'sports')
    other = build(path, 'llama', rank=4)
    with pytest.raises(ValueError, match='r=2.*rank=4'):
        other.load_adapter(str(tmp_path / 'a'), 'sports')
    fewer = build(path, 'llama', target_modules=('q_proj', ))
    with pytest.raises(ValueError, match='does not fit.*unexpected'):
        fewer.load_adapter(str(tmp_path / 'a'), 'sports')
    cfg_file = tmp_path / 'a' / 'adapter_config.json'
    cfg = json.loads(cfg_file.read_text())
    cfg['use_dora'] = True
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match='use_dora=True'):
        lm.load_adapter(str(tmp_path / 'a'), 'sports')
    with pytest.raises(FileNotFoundError, match='adapter_config.json'):
        lm.load_adapter(str(tmp_path / 'none'), 'sports')


def test_init_weights_restores_what_an_init_cfg_overwrote(lm_dirs):
    """The Runner's init_weights after an enclosing init_cfg: GPT-2's
    linearised Conv1D (stored transposed) and a plain weight come back from
    the directory; the LoRA factors keep their values."""
    path, ref = lm_dirs['gpt2']
    lm = build(path, 'gpt2')
    randomise(lm)
    lora = [p.detach().clone() for p in lm.adapter.lora_parameters()]
    attn = lm.model.transformer.h[0].attn.c_attn
    with torch.no_grad():
        attn.weight.zero_()
        lm.model.transformer.wte.weight.fill_(1.)
    lm.init_weights()
    saved = ref.transformer.h[0].attn.c_attn.weight  # Conv1D: [in, out]
    assert torch.equal(attn.weight, saved.t())
    assert torch.equal(lm.model.transformer.wte.weight,
                       ref.transformer.wte.weight)
    assert all(torch.equal(a, b)
               for a, b in zip(lora, lm.adapter.lora_parameters()))

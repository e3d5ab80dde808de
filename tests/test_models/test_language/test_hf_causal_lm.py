"""HFCausalLM against the transformers model it wraps: loading, freezing,
checkpointing, dtype and generation."""
import os
import shutil

import numpy as np
import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.models.language import filter_logits
from hvlm.registry import MODELS

PROMPTS = ['question: what does the person do? answer:', 'caption:',
           'question: what happens first?']


def build(path, **kwargs):
    return MODELS.build(dict(type='HFCausalLM', pretrained=path, **kwargs))


def left_pad(lm, texts):
    """Embeddings and mask of ``texts``, left-padded."""
    ids = [lm.encode(t) for t in texts]
    L = max(map(len, ids))
    rows = [[lm.pad_token_id] * (L - len(i)) + i for i in ids]
    mask = [[0] * (L - len(i)) + [1] * len(i) for i in ids]
    return lm.embed(torch.tensor(rows)), torch.tensor(mask)


@pytest.mark.parametrize('family', ['llama', 'qwen2', 'gpt2'])
def test_matches_transformers_and_is_frozen(lm_dirs, family):
    path, ref = lm_dirs[family]
    lm = build(path)
    ids = torch.tensor([lm.encode(PROMPTS[0])])
    logits, past = lm(lm.embed(ids), torch.ones_like(ids))
    with torch.no_grad():
        expected = ref(input_ids=ids).logits
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    assert past is None
    assert lm.context_length == 64 and lm.embed_dims == 32
    lm.train()
    assert not lm.trainable and not lm.model.training
    assert not any(p.requires_grad for p in lm.parameters())
    # greedy generation with the cache equals transformers' own
    with torch.no_grad():
        hf = ref.generate(ids, attention_mask=torch.ones_like(ids),
                          max_new_tokens=6, do_sample=False,
                          pad_token_id=lm.pad_token_id,
                          eos_token_id=None)[0, ids.shape[1]:].tolist()
    ours = lm.generate(lm.embed(ids), torch.ones_like(ids), 6)[0]
    assert ours == hf[:len(ours)]
    assert len(ours) == 6 or hf[len(ours)] == lm.eos_token_id


def test_missing_directory_and_files_are_named(lm_dirs, tmp_path):
    with pytest.raises(FileNotFoundError, match='nowhere.*does not exist'):
        build(str(tmp_path / 'nowhere'))
    src = lm_dirs['llama'][0]
    for name, message in (('model.safetensors', 'no weights file'),
                          ('tokenizer.json', 'no tokenizer'),
                          ('config.json', 'config.json is missing')):
        broken = tmp_path / name
        shutil.copytree(src, broken)
        os.remove(broken / name)
        with pytest.raises(FileNotFoundError, match=message) as err:
            build(str(broken))
        assert str(broken) in str(err.value)


def test_tokenizer_without_pad_is_set_and_said_once(lm_dirs, monkeypatch):
    from hvlm.models.language import hf_causal_lm
    said = []
    monkeypatch.setattr(hf_causal_lm, 'print_log',
                        lambda msg, **kw: said.append(msg))
    lm = build(lm_dirs['gpt2'][0])
    assert lm.tokenizer.pad_token == lm.tokenizer.eos_token
    assert len(said) == 1 and 'no pad token' in said[0]
    assert lm_dirs['gpt2'][0] in said[0]
    said.clear()
    build(lm_dirs['llama'][0])  # has <pad>: nothing to say
    assert said == []


@pytest.mark.parametrize('family', ['llama', 'gpt2'])
def test_left_padded_batch_decodes_like_one_by_one(lm_dirs, family):
    lm = build(lm_dirs[family][0])
    embeds, mask = left_pad(lm, PROMPTS)
    for kwargs in (dict(strategy='greedy'),
                   dict(strategy='beam', num_beams=3)):
        batch = lm.generate(embeds, mask, 5, **kwargs)
        alone = [
            lm.generate(*left_pad(lm, [p]), 5, **kwargs)[0] for p in PROMPTS
        ]
        assert batch == alone, kwargs
        assert lm.generate(embeds, mask, 5, use_cache=False,
                           **kwargs) == batch


def test_sampling_is_deterministic_under_a_seed(lm_dirs):
    lm = build(lm_dirs['qwen2'][0])
    embeds, mask = left_pad(lm, PROMPTS)

    def run(seed, use_cache=True):
        return lm.generate(embeds, mask, 8, strategy='sample', top_k=20,
                           top_p=0.9, temperature=1.5, use_cache=use_cache,
                           generator=torch.Generator().manual_seed(seed))

    first = run(0)
    assert run(0) == first and run(0, use_cache=False) == first
    assert any(run(s) != first for s in (1, 2, 3))


def test_beam_search_finds_the_best_two_token_sequence(lm_dirs):
    """With as many beams as tokens and two steps, beam search is
    exhaustive: compare with every 2-token continuation scored by the
    transformers model directly."""
    path, ref = lm_dirs['llama']
    lm = build(path)
    ids = lm.encode(PROMPTS[0])
    V = lm.model.config.vocab_size
    best = lm.generate(lm.embed(torch.tensor([ids])),
                       torch.ones(1, len(ids), dtype=torch.long), 2,
                       strategy='beam', num_beams=V, length_penalty=0.)[0]
    with torch.no_grad():
        first = ref(input_ids=torch.tensor([ids])).logits[0, -1].log_softmax(
            -1)  # [V]
        pairs = torch.tensor([ids + [t] for t in range(V)])
        second = ref(input_ids=pairs).logits[:, -1].log_softmax(-1)  # [V, V]
    total = (first[:, None] + second).numpy()  # [V, V]
    eos = lm.eos_token_id
    total[eos, :] = -np.inf
    total[eos, eos] = first[eos]  # ends after one token
    t1, t2 = np.unravel_index(total.argmax(), total.shape)
    expected = [int(t1)] if t1 == eos else [int(t1), int(t2)]
    expected = expected[:expected.index(eos)] if eos in expected else expected
    assert best == expected


def test_filter_logits_matches_numpy():
    logits = torch.tensor([[2., 1., 0.5, 0., -1.]])
    kept = filter_logits(logits, top_k=3).isfinite()[0].tolist()
    assert kept == [True, True, True, False, False]
    p = np.exp([2., 1., 0.5, 0., -1.])
    p /= p.sum()  # 0.55, 0.20, 0.12, ...: 0.55 < 0.7 <= 0.75
    kept = filter_logits(logits, top_p=0.7).isfinite()[0].tolist()
    assert kept == [True, True, False, False, False]
    assert p[0] < 0.7 <= p[0] + p[1]


def test_gradient_checkpointing_gives_the_same_input_gradients(lm_dirs):
    path = lm_dirs['llama'][0]
    grads, calls = [], []
    for with_cp in (False, True):
        lm = build(path, with_cp=with_cp).train()
        assert not lm.model.model.layers[0].mlp.training  # frozen: eval
        count = []
        lm.model.model.layers[0].mlp.register_forward_pre_hook(
            lambda *_: count.append(1))
        ids = torch.tensor([lm.encode(PROMPTS[0])])
        x = lm.embed(ids).detach().requires_grad_()
        logits, _ = lm(x, torch.ones_like(ids))
        logits.square().mean().backward()
        grads.append(x.grad)
        calls.append(len(count))
    torch.testing.assert_close(grads[0], grads[1], atol=1e-6, rtol=0)
    assert calls == [1, 2]  # checkpointed: recomputed in the backward


def test_bfloat16(lm_dirs):
    path = lm_dirs['llama'][0]
    lm16, lm32 = build(path, dtype='bfloat16'), build(path)
    assert all(p.dtype == torch.bfloat16 for p in lm16.parameters())
    ids = torch.tensor([lm32.encode(PROMPTS[0])])
    a, _ = lm16(lm16.embed(ids), torch.ones_like(ids))
    b, _ = lm32(lm32.embed(ids), torch.ones_like(ids))
    assert a.dtype == torch.bfloat16
    assert (a.float() - b).abs().max() < 0.1 * b.abs().max()
    with pytest.raises(ValueError, match="dtype='fp8'"):
        build(path, dtype='fp8')

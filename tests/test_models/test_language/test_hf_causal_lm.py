"""HFCausalLM against the transformers model it wraps: loading, freezing,
checkpointing, dtype and generation."""
import os
import shutil

import numpy as np
import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.models.language import filter_logits, left_pad_positions
from hvlm.models.language.generation import prefix_attention_mask
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


def test_prefix_attention_mask_matches_loops():
    # two left-padded rows of 6: row 0 [pad, t, v, v, v, t], row 1
    # [t, v, v, t, t, t]; the last q positions are the queries
    mask = torch.tensor([[0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    prefix = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]]).bool()
    K = 6
    for mode in ('causal', 'bidirectional', 'self'):
        for q in (6, 2):
            out = prefix_attention_mask(mask, prefix, q, mode, torch.float32)
            assert out.shape == (2, 1, q, K)
            for n in range(2):
                for a in range(q):
                    i = K - q + a
                    for j in range(K):
                        if not mask[n, j]:
                            ok = False
                        elif prefix[n, i] and mode == 'self':
                            ok = j == i
                        elif prefix[n, i] and mode == 'bidirectional':
                            ok = j <= i or bool(prefix[n, j])
                        else:
                            ok = j <= i
                        want = 0. if ok else torch.finfo(torch.float32).min
                        assert out[n, 0, a, j] == want, (mode, q, n, i, j)
    with pytest.raises(ValueError, match="'both'.*must be one of"):
        prefix_attention_mask(mask, prefix, 6, 'both', torch.float32)


@pytest.mark.parametrize('family', ['llama', 'gpt2'])
def test_video_tokens_attend_as_the_prefix_mode_says(lm_dirs, family):
    """Which positions' outputs change when one token changes, and (for
    ``'self'``) each video token's output against the LM run on that token
    alone at its position."""
    lm = build(lm_dirs[family][0])
    g = torch.Generator().manual_seed(0)
    # [pad, text, v, v, v, text, text]
    embeds = torch.randn(1, 7, lm.embed_dims, generator=g)
    mask = torch.tensor([[0, 1, 1, 1, 1, 1, 1]])
    positions = left_pad_positions(mask)
    prefix = torch.tensor([[0, 0, 1, 1, 1, 0, 0]]).bool()
    real = slice(1, None)

    def run(x, mode):
        return lm(x, mask, positions, prefix=prefix,
                  prefix_attention=mode)[0][0]

    def changed(mode, where):
        x = embeds.clone()
        # not a constant: a LayerNorm (GPT-2) would remove it
        x[0, where] += torch.randn(lm.embed_dims, generator=g)
        diff = (run(x, mode) - run(embeds, mode)).abs().amax(-1)
        return (diff > 1e-5).tolist()[real]

    assert changed('causal', 4) == [False, False, False, True, True, True]
    assert changed('bidirectional', 4) == [False, True, True, True, True,
                                           True]
    assert changed('self', 4) == [False, False, False, True, True, True]
    assert changed('self', 2) == [False, True, False, False, True, True]
    for mode in ('bidirectional', 'self'):
        # text stays causal: a later text token changes nothing before it
        assert changed(mode, 5) == [False] * 4 + [True, True]
    out = run(embeds, 'self')
    for i in (2, 3, 4):
        alone, _ = lm(embeds[:, i:i + 1], torch.ones(1, 1, dtype=torch.long),
                      positions[:, i:i + 1])
        torch.testing.assert_close(out[i], alone[0, 0], atol=1e-5, rtol=0)
    # the causal mode is the LM's own mask
    torch.testing.assert_close(run(embeds, 'causal'),
                               lm(embeds, mask, positions)[0][0])


@pytest.mark.parametrize('mode', ['bidirectional', 'self'])
def test_prefix_generation_with_cache_batch_and_beams(lm_dirs, mode):
    """Generation with a prefix mode: the cache gives what rerunning the
    whole sequence gives, and a left-padded batch what each row alone
    gives, for greedy and beam search."""
    lm = build(lm_dirs['llama'][0])
    g = torch.Generator().manual_seed(1)
    video = torch.randn(2, 3, lm.embed_dims, generator=g)
    text, mask = left_pad(lm, PROMPTS[:2])
    embeds = torch.cat([video, text], 1)
    # left padding goes before the video
    pad = (mask == 0).sum(1)
    rows, masks, prefixes = [], [], []
    for n in range(2):
        seq = torch.cat([video[n], text[n, pad[n]:]])
        rows.append(torch.cat([text[n, :pad[n]], seq]))
        masks.append(torch.cat([torch.zeros(pad[n]), torch.ones(len(seq))]))
        prefixes.append(torch.cat([torch.zeros(pad[n]), torch.ones(3),
                                   torch.zeros(len(seq) - 3)]))
    embeds = torch.stack(rows)
    mask, prefix = torch.stack(masks).long(), torch.stack(prefixes).bool()
    for kwargs in (dict(strategy='greedy'),
                   dict(strategy='beam', num_beams=3)):
        kwargs.update(prefix=prefix, prefix_attention=mode)
        batch = lm.generate(embeds, mask, 5, **kwargs)
        assert lm.generate(embeds, mask, 5, use_cache=False,
                           **kwargs) == batch, kwargs
        for n in range(2):
            one = dict(kwargs, prefix=prefix[n:n + 1, pad[n]:])
            assert lm.generate(embeds[n:n + 1, pad[n]:],
                               mask[n:n + 1, pad[n]:], 5,
                               **one)[0] == batch[n], (kwargs, n)

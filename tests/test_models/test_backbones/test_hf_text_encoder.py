"""HFTextEncoder against the transformers model it wraps."""
import shutil

import pytest
import torch

from hvlm.registry import MODELS

TEXTS = ['a dog', 'the cat sat on the mat', 'someone rolls to the left']


def build(path, **kwargs):
    return MODELS.build(dict(type='HFTextEncoder', pretrained=path,
                             **kwargs))


def reference(model, input_ids, attention_mask=None):
    with torch.no_grad():
        states = model.text_model(
            input_ids=input_ids,
            attention_mask=attention_mask).last_hidden_state
        feats = model.get_text_features(
            input_ids=input_ids, attention_mask=attention_mask)
    if not torch.is_tensor(feats):  # an output object in transformers 5.x
        feats = feats.pooler_output
    return states, feats


def test_clip_matches_transformers(hf_dirs):
    path, model = hf_dirs['clip']
    encoder = build(path)
    out = encoder(TEXTS)
    batch = encoder.tokenize(TEXTS)
    assert batch['input_ids'].shape[1] == 8  # padded to the longest
    states, feats = reference(model, **batch)
    torch.testing.assert_close(out.token_states, states, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.embeds, feats, atol=1e-5, rtol=0)
    assert out.embeds.shape == (3, 24)
    assert torch.equal(out.attention_mask, batch['attention_mask'])


def test_siglip_matches_transformers(hf_dirs):
    path, model = hf_dirs['siglip']
    encoder = build(path)
    out = encoder(TEXTS)
    ids = encoder.tokenize(TEXTS)['input_ids']
    assert ids.shape == (3, 16)  # padded to max_position_embeddings
    states, feats = reference(model, ids)  # SigLIP: no mask, as trained
    torch.testing.assert_close(out.token_states, states, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.embeds, feats, atol=1e-5, rtol=0)


def test_siglip_with_its_sentencepiece_tokenizer(hf_dirs, tmp_path):
    """A SigLIP directory as released: spiece.model, no tokenizer.json."""
    from transformers import AutoTokenizer
    from tests.hf_checkpoints import save_sentencepiece_tokenizer
    path = tmp_path / 'siglip'
    shutil.copytree(hf_dirs['siglip'][0], path)
    save_sentencepiece_tokenizer(str(path))
    assert not (path / 'tokenizer.json').exists()
    encoder = build(str(path))
    own = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    ids = own(TEXTS, padding='max_length', max_length=16, truncation=True,
              return_tensors='pt')['input_ids']
    assert torch.equal(encoder.tokenize(TEXTS)['input_ids'], ids)
    _, feats = reference(hf_dirs['siglip'][1], ids)
    torch.testing.assert_close(encoder(TEXTS).embeds, feats, atol=1e-5,
                               rtol=0)


def test_tokenizer_is_the_directorys(hf_dirs):
    from transformers import AutoTokenizer
    path, _ = hf_dirs['clip']
    own = AutoTokenizer.from_pretrained(path, local_files_only=True)
    ids = build(path).tokenize(['a person jumps'])['input_ids'][0].tolist()
    assert ids == own('a person jumps')['input_ids']
    assert ids[0] == own.bos_token_id and ids[-1] == own.eos_token_id


def test_clip_text_is_causal(hf_dirs):
    """A token's state depends on the tokens before it only (the original
    prompt learners ran CLIP's text tower without its causal mask)."""
    encoder = build(hf_dirs['clip'][0])
    ids = encoder.tokenize(['the cat sat on the mat'])['input_ids']
    changed = ids.clone()
    changed[0, 5] = (changed[0, 5] + 7) % 100 + 4  # another ordinary token
    a, b = encoder(ids).token_states, encoder(changed).token_states
    torch.testing.assert_close(a[:, :5], b[:, :5], atol=1e-6, rtol=0)
    assert (a[:, 5:] - b[:, 5:]).abs().amax() > 1e-3


@pytest.mark.parametrize('family', ['clip', 'siglip'])
def test_a_texts_embedding_ignores_its_batch(hf_dirs, family):
    """Padding is masked (CLIP) or fixed (SigLIP): a class name's feature
    must not depend on the other class names it is encoded with."""
    encoder = build(hf_dirs[family][0])
    alone = encoder(['a dog']).embeds
    together = encoder(['a dog', 'two people play tennis outside']).embeds
    torch.testing.assert_close(together[:1], alone, atol=1e-5, rtol=0)


def test_clip_needs_the_end_token(hf_dirs):
    encoder = build(hf_dirs['clip'][0])
    ids = encoder.tokenize(['a dog'])['input_ids']
    with pytest.raises(ValueError, match='no end token'):
        encoder(ids[:, :-1])


def test_max_length_truncates_and_keeps_the_end(hf_dirs):
    encoder = build(hf_dirs['clip'][0], max_length=5)
    ids = encoder.tokenize(['two people play tennis outside'])['input_ids']
    assert ids.shape == (1, 5) and ids[0, -1].item() == 3
    with pytest.raises(ValueError, match='max_position_embeddings'):
        build(hf_dirs['clip'][0], max_length=17)


def test_clip_config_and_tokenizer_must_agree_on_the_end(hf_dirs, tmp_path):
    """config.json's eos_token_id decides where CLIP pools; 2 is the old
    convention (pool at the largest id), right only when the tokenizer's
    end token is its last id, as in OpenAI's vocabulary."""
    import json
    path = tmp_path / 'clip'
    shutil.copytree(hf_dirs['clip'][0], path)
    cfg = json.loads((path / 'config.json').read_text())
    for eos in (5, 2):  # another token; the old convention
        cfg['text_config']['eos_token_id'] = eos
        (path / 'config.json').write_text(json.dumps(cfg))
        with pytest.raises(ValueError, match='CLIP would pool the wrong'):
            build(str(path))

import pytest
import torch

from hvlm.models.text import SPECIAL_TOKENS, WordTokenizer
from hvlm.utils.ptb_tokenize import caption_words

TEXTS = ['What colour is the object?', 'a red circle rolls to the left',
         'a red bar spins', 'red']


def test_special_ids_and_words():
    tok = WordTokenizer.train(TEXTS)
    assert [tok._tok.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    # 4 special + 13 distinct lower-cased words ('?' is not a word)
    words = {w for t in TEXTS for w in t.lower().replace('?', '').split()}
    assert tok.vocab_size == 4 + len(words)
    ids = tok.encode('A RED zebra?')
    assert ids[2] == tok.unk_id and len(ids) == 3
    assert tok.decode(ids) == 'a red'  # [UNK] dropped
    # decode stops at the first EOS and drops BOS / PAD
    assert tok.decode([tok.bos_id] + tok.encode('red bar') +
                      [tok.eos_id] + tok.encode('circle')) == 'red bar'


def test_vocab_size_keeps_most_frequent():
    tok = WordTokenizer.train(['red red red blue blue green'], vocab_size=6)
    assert tok.vocab_size == 6
    assert tok.encode('green')[0] == tok.unk_id
    assert tok.encode('red blue')[0] != tok.unk_id


def test_batch_encode_pads_and_cuts():
    tok = WordTokenizer.train(TEXTS)
    out = tok.batch_encode(['a red bar spins', 'red'], max_len=4, bos=True,
                           eos=True)
    assert out.dtype == torch.long and out.shape == (2, 4)
    red, bar, a = (tok.encode(w)[0] for w in ('red', 'bar', 'a'))
    assert out[0].tolist() == [tok.bos_id, a, red, tok.eos_id]
    assert out[1].tolist() == [tok.bos_id, red, tok.eos_id, tok.pad_id]


def test_json_round_trip():
    tok = WordTokenizer.train(TEXTS)
    again = WordTokenizer.from_str(tok.to_str())
    for text in TEXTS:
        assert again.encode(text) == tok.encode(text)


def test_errors():
    with pytest.raises(ValueError, match='vocab_size=4 must exceed'):
        WordTokenizer.train(TEXTS, vocab_size=4)


def test_words_are_the_scored_words():
    # the vocabulary and the decoded words are caption_words, the words
    # CaptionMetric scores, in any language
    texts = ["The player's ball didn't go (in).", '¡El niño está aquí!',
             '一个男人在跑步。', '...']
    tok = WordTokenizer.train(texts)
    for text in texts:
        ids = tok.encode(text)
        assert tok.unk_id not in ids
        assert tok.decode(ids).split() == caption_words(text)
    assert tok.encode('...') == []
    assert tok.decode(tok.encode('NIÑO')) == 'niño'

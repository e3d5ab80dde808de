from types import SimpleNamespace

import torch.nn as nn

from hvlm.models.text import TokenizerStateMixin, WordTokenizer
from hvlm.registry import DATASETS, HOOKS


class Holder(TokenizerStateMixin, nn.Module):

    def __init__(self, vocab_size):
        super().__init__()
        self.vocab_size = vocab_size
        self.linear = nn.Linear(2, 2)


def runner_with(model, data_root):
    dataset = DATASETS.build(
        dict(type='VideoDataset', data_root=data_root, domains=['sports']))
    return SimpleNamespace(
        model=model, train_dataloader=SimpleNamespace(dataset=dataset))


def test_trains_on_the_training_annotations(tiny_demo_root):
    model = nn.ModuleDict(dict(a=Holder(500), b=Holder(300)))
    runner = runner_with(model, tiny_demo_root + '/training')
    HOOKS.build(dict(type='TokenizerHook')).before_train(runner)
    tok = model['a'].tokenizer
    assert tok is model['b'].tokenizer
    assert tok.vocab_size <= 300
    dataset = runner.train_dataloader.dataset
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        for qa in info['qa_pairs']:
            assert tok.unk_id not in tok.encode(qa['question'])
        for caption in info['captions']:
            assert tok.unk_id not in tok.encode(caption['text'])


def test_keeps_a_loaded_tokenizer_and_saves_it(tiny_demo_root):
    loaded = WordTokenizer.train(['only these words'])
    a, b = Holder(100), Holder(100)
    a.set_tokenizer(loaded)
    model = nn.ModuleDict(dict(a=a, b=b))
    runner = runner_with(model, tiny_demo_root + '/training')
    HOOKS.build(dict(type='TokenizerHook')).before_train(runner)
    assert a.tokenizer is loaded and b.tokenizer is loaded
    fresh = nn.ModuleDict(dict(a=Holder(100), b=Holder(100)))
    fresh.load_state_dict(model.state_dict())
    assert fresh['b'].tokenizer.to_str() == loaded.to_str()


def test_too_large_tokenizer_is_refused():
    import pytest
    with pytest.raises(ValueError, match='12 tokens but vocab_size=5'):
        Holder(5).set_tokenizer(
            WordTokenizer.train(['a b c d e f g h']))

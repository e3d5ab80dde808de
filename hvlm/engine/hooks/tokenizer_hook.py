"""Train the model's tokenizer on the training annotations."""
from typing import Iterator, List

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS
from hvlm.models.text.tokenizer import WordTokenizer
from hvlm.models.text.tokenizer_state import TokenizerStateMixin


def annotation_texts(dataset) -> Iterator[str]:
    """Every question, answer and caption of ``dataset``'s data list, then
    its ``words`` vocabulary (built from the training split's captions,
    whatever the domain filter), so that all domains share one tokenizer."""
    dataset.full_init()
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        for qa in info.get('qa_pairs', ()):
            yield qa['question']
            yield qa['answer']
        for caption in info.get('captions', ()):
            yield caption['text']
    yield from dataset.metainfo.get('words', ())


@HOOKS.register_module()
class TokenizerHook(Hook):
    """Give every module that needs a tokenizer one, before training.

    A module already holding a tokenizer (loaded from a checkpoint, e.g.
    the general model when fine-tuning a domain) keeps it, and the others
    get the same one, so ids never change under a trained embedding.
    Otherwise one :class:`WordTokenizer` is trained on the training
    dataset's questions, answers and captions (:func:`annotation_texts`)
    with the smallest ``vocab_size`` among those modules. The tokenizer is
    then saved with each module's state dict.

    Args:
        min_frequency (int): Words seen fewer times map to ``[UNK]``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, min_frequency: int = 1) -> None:
        self.min_frequency = min_frequency

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        holders: List[TokenizerStateMixin] = [
            m for m in model.modules() if isinstance(m, TokenizerStateMixin)
        ]
        if not holders:
            return
        have = [m.tokenizer for m in holders if m.tokenizer is not None]
        if have:
            tokenizer = have[0]
            source = 'kept the loaded'
        else:
            tokenizer = WordTokenizer.train(
                annotation_texts(runner.train_dataloader.dataset),
                vocab_size=min(m.vocab_size for m in holders),
                min_frequency=self.min_frequency)
            source = 'trained a'
        # EMAHook copies the model in before_run, before there is a
        # tokenizer: its copy needs the same one, or the averaged weights it
        # saves as the checkpoint's state_dict would carry none.
        for hook in getattr(runner, 'hooks', ()):
            ema_model = getattr(hook, 'ema_model', None)
            if isinstance(ema_model, nn.Module):
                holders += [
                    m for m in ema_model.modules()
                    if isinstance(m, TokenizerStateMixin)
                ]
        for module in holders:
            if module.tokenizer is None:
                module.set_tokenizer(tokenizer)
        print_log(
            f'TokenizerHook: {source} tokenizer of {tokenizer.vocab_size} '
            f'words for {len(holders)} module(s)',
            logger='current')

"""Keep a module's tokenizer in its state dict."""
from typing import Optional

import torch

from .tokenizer import WordTokenizer


class TokenizerStateMixin:
    """For ``nn.Module`` s that own a :class:`WordTokenizer`.

    The tokenizer is saved as its JSON string, UTF-8 encoded in a
    ``uint8`` tensor (empty when there is none), through PyTorch's
    ``get_extra_state`` / ``set_extra_state``: it is inside every
    checkpoint's ``state_dict`` under ``<module>._extra_state``, loads with
    ``weights_only=True``, compares like any weight, and a fine-tuned or
    tested model decodes with exactly the ids it was trained with.
    ``vocab_size`` is the module's embedding capacity; a tokenizer with
    more words is refused.
    """

    tokenizer: Optional[WordTokenizer] = None
    vocab_size: int

    def set_tokenizer(self, tokenizer: WordTokenizer) -> None:
        if tokenizer.vocab_size > self.vocab_size:
            raise ValueError(
                f'{type(self).__name__}: the tokenizer has '
                f'{tokenizer.vocab_size} tokens but vocab_size='
                f'{self.vocab_size}; raise vocab_size or train the '
                'tokenizer with a smaller vocab_size')
        self.tokenizer = tokenizer

    def require_tokenizer(self) -> WordTokenizer:
        if self.tokenizer is None:
            raise RuntimeError(
                f'{type(self).__name__} has no tokenizer: train with '
                "HVLMRunner (its TokenizerHook trains one on the training "
                'annotations), load a checkpoint that has '
                'one, or call set_tokenizer(WordTokenizer.train(texts))')
        return self.tokenizer

    def get_extra_state(self) -> torch.Tensor:
        if self.tokenizer is None:
            return torch.zeros(0, dtype=torch.uint8)
        return torch.frombuffer(
            bytearray(self.tokenizer.to_str().encode('utf-8')),
            dtype=torch.uint8)

    def set_extra_state(self, state: torch.Tensor) -> None:
        if not isinstance(state, torch.Tensor) or state.dtype != torch.uint8:
            raise TypeError(
                f'{type(self).__name__}: expected the tokenizer as a uint8 '
                f'tensor in the state dict, got {type(state).__name__}')
        if state.numel():
            self.set_tokenizer(WordTokenizer.from_str(
                bytes(state.cpu().tolist()).decode('utf-8')))

"""A word-level tokenizer trained on the training annotations."""
from typing import Iterable, List, Optional, Sequence

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tokenizers.trainers import WordLevelTrainer
from torch import Tensor

from hvlm.utils.ptb_tokenize import caption_words

PAD, UNK, BOS, EOS = '[PAD]', '[UNK]', '[BOS]', '[EOS]'
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)


class WordTokenizer:
    """The words the caption metrics score, one id each.

    Texts are cut into words by
    :func:`~hvlm.utils.ptb_tokenize.caption_words` (pycocoevalcap's PTB
    tokenisation, lower-cased, its punctuation dropped; one word per
    Chinese or Japanese character), so a caption the model writes is scored
    on exactly the words it wrote. The ids come from a HuggingFace
    ``tokenizers`` WordLevel model over those words (a maintained Rust
    implementation whose whole state is one JSON string), with the four
    special tokens at fixed ids: ``[PAD]=0``, ``[UNK]=1``, ``[BOS]=2``,
    ``[EOS]=3``. Word level rather than sub-words because the captions and
    questions of video data sets are short and repetitive and a caption
    decoder's vocabulary must be readable; words seen fewer than
    ``min_frequency`` times map to ``[UNK]``.

    The tokenizer travels with the model: heads that own one store
    :meth:`to_str` in their state dict (``get_extra_state``), so a checkpoint
    decodes exactly what it was trained on.

    Args:
        tokenizer (tokenizers.Tokenizer): A WordLevel tokenizer whose first
            four ids are :data:`SPECIAL_TOKENS`; build one with
            :meth:`train` or :meth:`from_str`.
    """

    pad_id, unk_id, bos_id, eos_id = 0, 1, 2, 3

    def __init__(self, tokenizer: Tokenizer) -> None:
        for i, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != i:
                raise ValueError(
                    f'tokenizer maps {token!r} to '
                    f'{tokenizer.token_to_id(token)}, expected id {i}; '
                    'build it with WordTokenizer.train')
        self._tok = tokenizer

    @classmethod
    def train(cls,
              texts: Iterable[str],
              vocab_size: int = 10000,
              min_frequency: int = 1) -> 'WordTokenizer':
        """Learn the vocabulary of ``texts``: the ``vocab_size - 4`` most
        frequent words (ties broken by the trainer's order)."""
        if vocab_size <= len(SPECIAL_TOKENS):
            raise ValueError(f'vocab_size={vocab_size} must exceed the '
                             f'{len(SPECIAL_TOKENS)} special tokens')
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        # texts arrive as caption_words joined by spaces
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        trainer = WordLevelTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=list(SPECIAL_TOKENS),
            show_progress=False)
        tok.train_from_iterator([' '.join(caption_words(t)) for t in texts],
                                trainer=trainer)
        return cls(tok)

    @classmethod
    def from_str(cls, json_str: str) -> 'WordTokenizer':
        return cls(Tokenizer.from_str(json_str))

    def to_str(self) -> str:
        return self._tok.to_str()

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size()

    def encode(self, text: str) -> List[int]:
        """Ids of ``text``'s :func:`caption_words`, without special
        tokens."""
        return self._tok.encode(' '.join(caption_words(text)),
                                add_special_tokens=False).ids

    def decode(self, ids: Sequence[int]) -> str:
        """Words of ``ids`` joined by spaces; stops at the first
        ``[EOS]`` and drops the other special tokens."""
        ids = list(ids)
        if self.eos_id in ids:
            ids = ids[:ids.index(self.eos_id)]
        return self._tok.decode(ids, skip_special_tokens=True)

    def batch_encode(self,
                     texts: Sequence[str],
                     max_len: int,
                     bos: bool = False,
                     eos: bool = False,
                     device: Optional[torch.device] = None) -> Tensor:
        """``LongTensor [len(texts), L]`` padded with ``[PAD]``, each row
        ``[BOS] words [EOS]`` as asked and cut to ``max_len`` tokens
        (``L <= max_len`` is the longest row)."""
        rows = []
        for text in texts:
            ids = self.encode(text)
            ids = ([self.bos_id] if bos else []) + ids
            ids = ids[:max_len - 1 if eos else max_len]
            rows.append(ids + ([self.eos_id] if eos else []))
        width = max([len(r) for r in rows] + [1])
        out = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, ids in enumerate(rows):
            out[i, :len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out.to(device) if device is not None else out

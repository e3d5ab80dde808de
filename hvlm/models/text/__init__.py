"""Text parts of the heads: tokenizer, question encoder, caption decoder.

Not registered (the heads build them), except :class:`TokenizerHook` in
``HOOKS``.
"""
from .beam_search import beam_search, greedy_search
from .caption_decoder import CaptionDecoder
from .question_encoder import QuestionVideoEncoder
from .text_transformer_layer import TextTransformerLayer
from .tokenizer import SPECIAL_TOKENS, WordTokenizer
from .tokenizer_hook import TokenizerHook, annotation_texts
from .tokenizer_state import TokenizerStateMixin

__all__ = [
    'WordTokenizer', 'SPECIAL_TOKENS', 'TokenizerStateMixin',
    'TokenizerHook', 'annotation_texts', 'TextTransformerLayer',
    'QuestionVideoEncoder', 'CaptionDecoder', 'greedy_search', 'beam_search'
]

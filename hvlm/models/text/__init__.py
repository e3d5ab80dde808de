"""Text parts of the heads: tokenizer, question encoder, caption decoder.

Not registered (the heads build them). The tokenizer is trained by
``hvlm.engine.hooks.TokenizerHook``, which ``HVLMRunner`` adds to every run.
"""
from .beam_search import beam_search, greedy_search
from .caption_decoder import CaptionDecoder
from .question_encoder import QuestionVideoEncoder
from .text_transformer_layer import TextTransformerLayer
from .tokenizer import SPECIAL_TOKENS, WordTokenizer
from .tokenizer_state import TokenizerStateMixin

__all__ = [
    'WordTokenizer', 'SPECIAL_TOKENS', 'TokenizerStateMixin',
    'annotation_texts', 'TextTransformerLayer',
    'QuestionVideoEncoder', 'CaptionDecoder', 'greedy_search', 'beam_search'
]

"""Pretrained causal language models (registry: ``MODELS``).

``transformers`` is imported only when one is built.
"""
from .generation import Decoder, filter_logits, left_pad_positions
from .hf_causal_lm import HFCausalLM
from .peft_format import load_peft_adapter, save_peft_adapter

__all__ = [
    'HFCausalLM', 'Decoder', 'filter_logits', 'left_pad_positions',
    'load_peft_adapter', 'save_peft_adapter'
]

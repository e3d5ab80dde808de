"""Token mixers of the encoder blocks (registry: ``ATTENTIONS``)."""
from .full_attention import FullAttention

__all__ = ['FullAttention']

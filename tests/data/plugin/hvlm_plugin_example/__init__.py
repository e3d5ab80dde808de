"""A third-party package that adds an attention to hvlm without touching it."""
from .their_attention import TheirAttention

__all__ = ['TheirAttention']

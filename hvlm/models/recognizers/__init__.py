"""Recognizers: video -> class scores (registry: ``MODELS``)."""
from .clip_recognizer import CLIPRecognizer

__all__ = ['CLIPRecognizer']

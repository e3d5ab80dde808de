"""Pretraining without labels (registry: ``MODELS``)."""
from .clip_scratch import byte_tokenizer, save_clip_directory
from .video_text_contrastive import VideoTextContrastive, contrastive_loss

__all__ = [
    'VideoTextContrastive', 'contrastive_loss', 'byte_tokenizer',
    'save_clip_directory'
]

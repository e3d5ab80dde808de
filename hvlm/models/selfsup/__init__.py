"""Pretraining without labels (registry: ``MODELS``)."""
from .clip_scratch import byte_tokenizer, save_clip_directory
from .nt_xent import gather_with_grad, nt_xent_loss
from .simclr import SimCLR
from .video_text_contrastive import VideoTextContrastive, contrastive_loss

__all__ = [
    'SimCLR', 'nt_xent_loss', 'gather_with_grad', 'VideoTextContrastive',
    'contrastive_loss', 'byte_tokenizer', 'save_clip_directory'
]

"""Batch preparation on the model's device (registry: ``MODELS``)."""
from .image_data_preprocessor import ImageDataPreprocessor
from .simclr_views import SimCLRViews
from .video_data_preprocessor import VideoDataPreprocessor

__all__ = ['VideoDataPreprocessor', 'ImageDataPreprocessor', 'SimCLRViews']

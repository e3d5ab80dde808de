"""Batch preparation on the model's device (registry: ``MODELS``)."""
from .video_data_preprocessor import VideoDataPreprocessor

__all__ = ['VideoDataPreprocessor']

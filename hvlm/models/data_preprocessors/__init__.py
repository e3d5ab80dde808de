"""Batch preparation on the model's device (registry: ``MODELS``)."""
from .recognition_data_preprocessor import RecognitionDataPreprocessor
from .video_data_preprocessor import VideoDataPreprocessor
from .video_mix import VideoMix

__all__ = ['VideoDataPreprocessor', 'RecognitionDataPreprocessor', 'VideoMix']

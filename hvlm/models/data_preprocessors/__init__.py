"""Batch preparation on the model's device (registry: ``MODELS``)."""
from .recognition_data_preprocessor import RecognitionDataPreprocessor
from .image_data_preprocessor import ImageDataPreprocessor
from .mix_augments import CutMix, MixUp, RandomBatchAugment
from .severity_augment import SEVERITIES, SeverityAugment
from .simclr_views import SimCLRViews
from .video_data_preprocessor import VideoDataPreprocessor
from .video_mix import VideoMix

__all__ = [
    'VideoDataPreprocessor', 'RecognitionDataPreprocessor', 'VideoMix',
    'ImageDataPreprocessor', 'SimCLRViews',
    'MixUp', 'CutMix', 'RandomBatchAugment', 'SeverityAugment',
    'SEVERITIES'
]

"""Batch preparation on the model's device (registry: ``MODELS``)."""
from .image_data_preprocessor import ImageDataPreprocessor
from .mix_augments import CutMix, MixUp, RandomBatchAugment
from .severity_augment import SEVERITIES, SeverityAugment
from .simclr_views import SimCLRViews
from .video_data_preprocessor import VideoDataPreprocessor

__all__ = [
    'VideoDataPreprocessor', 'ImageDataPreprocessor', 'SimCLRViews',
    'MixUp', 'CutMix', 'RandomBatchAugment', 'SeverityAugment',
    'SEVERITIES'
]

"""Pipeline steps of VideoDataset; importing this registers them all."""
from .cached_features import LoadCachedFeatures
from .formatting import FormatShape, PackVideoInputs
from .image import LoadImageFile, PackFrames, PackImageInputs, ResizeImage
from .loading import DecordDecode, DecordInit, SampleFrames
from .processing import (CenterCrop, Flip, RandomResizedCrop, Resize,
                         resize_frames)

__all__ = [
    'DecordInit', 'SampleFrames', 'DecordDecode', 'Resize',
    'RandomResizedCrop', 'CenterCrop', 'Flip', 'FormatShape',
    'PackVideoInputs', 'resize_frames', 'LoadCachedFeatures',
    'LoadImageFile', 'ResizeImage', 'PackImageInputs', 'PackFrames'
]

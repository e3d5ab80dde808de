"""Pipeline steps of VideoDataset; importing this registers them all."""
from .cached_features import LoadCachedFeatures
from .color_jitter import ColorJitter
from .formatting import FormatShape, PackVideoInputs
from .loading import (DecordDecode, DecordInit, SampleFrames,
                      SampleSegmentFrames, SampleText)
from .image import LoadImageFile, PackFrames, PackImageInputs, ResizeImage
from .pack_recognition import PackRecognitionInputs
from .processing import (CenterCrop, Flip, RandomResizedCrop, Resize,
                         resize_frames)
from .scene_graph import LoadSceneGraphFrames, PackSceneGraphInputs

__all__ = [
    'DecordInit', 'SampleFrames', 'DecordDecode', 'Resize',
    'RandomResizedCrop', 'CenterCrop', 'Flip', 'FormatShape',
    'PackVideoInputs', 'resize_frames', 'LoadCachedFeatures',
    'SampleSegmentFrames', 'SampleText', 'PackRecognitionInputs',
    'ColorJitter', 'LoadImageFile', 'ResizeImage', 'PackImageInputs',
    'PackFrames',
    'LoadSceneGraphFrames', 'PackSceneGraphInputs'
]

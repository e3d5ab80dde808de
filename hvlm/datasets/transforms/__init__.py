"""Pipeline steps of VideoDataset; importing this registers them all."""
from .cached_features import LoadCachedFeatures
from .formatting import FormatShape, PackVideoInputs
from .loading import DecordDecode, DecordInit, SampleFrames
from .processing import (CenterCrop, Flip, RandomResizedCrop, Resize,
                         resize_frames)
from .scene_graph import LoadSceneGraphFrames, PackSceneGraphInputs

__all__ = [
    'DecordInit', 'SampleFrames', 'DecordDecode', 'Resize',
    'RandomResizedCrop', 'CenterCrop', 'Flip', 'FormatShape',
    'PackVideoInputs', 'resize_frames', 'LoadCachedFeatures',
    'LoadSceneGraphFrames', 'PackSceneGraphInputs'
]

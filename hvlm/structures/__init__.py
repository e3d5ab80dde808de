"""Data structures passed between pipeline, models and metrics.

Nothing here imports :mod:`hvlm.models`: heads, backbones and mergers all
read these structures, so they sit below every model family.
"""
from .boxes import box_iou_plus1
from .encodings import FrameEncoding, TextEncoding
from .merge_info import MergeInfo
from .video_data_sample import OptSampleList, SampleList, VideoDataSample
from .video_features import VideoFeatures

__all__ = [
    'VideoDataSample', 'SampleList', 'OptSampleList', 'VideoFeatures',
    'MergeInfo', 'FrameEncoding', 'TextEncoding', 'box_iou_plus1'
]

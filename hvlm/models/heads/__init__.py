"""Task heads (registry: ``HEADS``)."""
from .action_detection_head import ActionDetectionHead
from .base_head import BaseHead
from .llm_head import LLMHead, keep_evenly
from .cls_head import ClsHead
from .multi_task_head import DEFAULT_TASK_WEIGHTS, MultiTaskHead
from .relation_head import RelationHead
from .gmm_relation_head import GMMRelationHead
from .temporal_decoding import (decode_segments, temporal_iou, temporal_nms,
                                temporal_smooth)
from .video_captioning_head import VideoCaptioningHead
from .video_memory import step_times, video_memory
from .video_qa_head import VideoQAHead

__all__ = [
    'BaseHead', 'ActionDetectionHead', 'MultiTaskHead', 'VideoQAHead',
    'LLMHead', 'keep_evenly', 'ClsHead',
    'VideoCaptioningHead', 'DEFAULT_TASK_WEIGHTS', 'decode_segments',
    'temporal_iou', 'temporal_nms', 'temporal_smooth', 'video_memory',
    'step_times', 'RelationHead', 'GMMRelationHead'
]

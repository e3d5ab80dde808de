"""Metrics over a validation or test set (registry: ``METRICS``)."""
from .caption_metric import CaptionMetric
from .domain_accuracy import DomainAccuracy
from .frame_action_metric import FrameActionMetric
from .scene_graph_recall import SceneGraphRecall
from .temporal_action_detection_metric import TemporalActionDetectionMetric
from .video_qa_metric import VideoQAMetric

__all__ = [
    'DomainAccuracy', 'FrameActionMetric', 'CaptionMetric',
    'TemporalActionDetectionMetric', 'VideoQAMetric', 'SceneGraphRecall'
]

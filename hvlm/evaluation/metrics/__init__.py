"""Metrics over a validation or test set (registry: ``METRICS``)."""
from .caption_metric import CaptionMetric
from .classification_metric import ClassificationMetric
from .domain_accuracy import DomainAccuracy
from .probe_accuracy import ProbeAccuracy
from .frame_action_metric import FrameActionMetric
from .recognition_metric import (RecognitionMetric, harmonic_mean,
                                 mean_class_accuracy, top_k_accuracy)
from .scene_graph_recall import SceneGraphRecall
from .temporal_action_detection_metric import TemporalActionDetectionMetric
from .video_qa_metric import VideoQAMetric
from .video_text_retrieval_metric import VideoTextRetrievalMetric

__all__ = [
    'DomainAccuracy', 'FrameActionMetric', 'CaptionMetric',
    'TemporalActionDetectionMetric', 'VideoQAMetric',
    'VideoTextRetrievalMetric', 'RecognitionMetric',
    'top_k_accuracy', 'mean_class_accuracy', 'harmonic_mean',
    'ClassificationMetric', 'ProbeAccuracy', 'SceneGraphRecall'
]

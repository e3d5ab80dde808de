"""Datasets, demo data and pipelines; importing this registers them all."""
from .action_genome import ActionGenomeDataset
from .annotations import caption_words, segment_at_times
from .check import check_videos
from .collate import scene_graph_collate, video_collate
from .demo_data import (DEMO_ANSWERS, DEMO_CLASSES, DEMO_DOMAINS,
                        ensure_demo_data, generate_demo_data)
from .exceptions import AnnotationError, VideoReadError
from .safe_pickle import UnsafePickleError, restricted_load
from .samplers import DomainWeightedSampler, SeededSampler
from .scene_graph_demo import (ensure_scene_graph_demo,
                               generate_scene_graph_demo)
from .transforms import *  # noqa: F401,F403
from .video_dataset import VideoDataset

__all__ = [
    'VideoDataset', 'video_collate', 'check_videos', 'generate_demo_data',
    'ensure_demo_data', 'AnnotationError', 'VideoReadError', 'caption_words',
    'segment_at_times', 'DEMO_CLASSES', 'DEMO_DOMAINS', 'DEMO_ANSWERS',
    'SeededSampler', 'DomainWeightedSampler', 'ActionGenomeDataset',
    'restricted_load', 'UnsafePickleError', 'generate_scene_graph_demo',
    'ensure_scene_graph_demo', 'scene_graph_collate'
]

"""Datasets, demo data and pipelines; importing this registers them all."""
from .action_genome import ActionGenomeDataset
from .annotations import caption_words, segment_at_times
from .check import check_videos
from .collate import scene_graph_collate, video_collate
from .demo_data import (DEMO_ANSWERS, DEMO_CLASSES, DEMO_DOMAINS,
                        ensure_demo_data, generate_demo_data)
from .demo_images import (DEMO_IMAGE_CLASSES, ensure_demo_images,
                          generate_demo_images)
from .easg import EASGDataset
from .exceptions import AnnotationError, ImageReadError, VideoReadError
from .image_folder_dataset import ImageFolderDataset
from .recognition import *  # noqa: F401,F403
from .safe_pickle import UnsafePickleError, restricted_load
from .samplers import DomainWeightedSampler, SeededSampler
from .scene_graph_priors import count_scene_priors
from .scene_graph_demo import (ensure_scene_graph_demo,
                               generate_scene_graph_demo)
from .transforms import *  # noqa: F401,F403
from .video_dataset import VideoDataset
from .video_text_dataset import VideoTextDataset, label_to_text

__all__ = [
    'VideoDataset', 'video_collate', 'check_videos', 'generate_demo_data',
    'ensure_demo_data', 'AnnotationError', 'VideoReadError', 'caption_words',
    'segment_at_times', 'DEMO_CLASSES', 'DEMO_DOMAINS', 'DEMO_ANSWERS',
    'SeededSampler', 'DomainWeightedSampler', 'VideoTextDataset',
    'label_to_text', 'ImageFolderDataset',
    'ImageReadError', 'DEMO_IMAGE_CLASSES', 'ensure_demo_images',
    'generate_demo_images', 'ActionGenomeDataset',
    'restricted_load', 'UnsafePickleError', 'generate_scene_graph_demo',
    'ensure_scene_graph_demo', 'scene_graph_collate', 'count_scene_priors'
]
__all__ += ['EASGDataset']

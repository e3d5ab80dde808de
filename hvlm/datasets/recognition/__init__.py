"""Recognition datasets: one class per video, from the split files users
have (UCF-101, HMDB-51, Kinetics, MMAction2 lists, hvlm's layout)."""
from .action_video import ActionVideoDataset
from .base import RecognitionDataset
from .class_names import class_name_to_text, read_class_texts
from .few_shot import base_novel_classes, k_shot_indices
from .hmdb51 import HMDB51Dataset
from .kinetics import KineticsDataset
from .ucf101 import UCF101Dataset
from .video_list import VideoListDataset

__all__ = [
    'RecognitionDataset', 'UCF101Dataset', 'HMDB51Dataset',
    'KineticsDataset', 'VideoListDataset', 'ActionVideoDataset',
    'class_name_to_text', 'read_class_texts', 'k_shot_indices',
    'base_novel_classes'
]

"""Inference for users: build a trained model, run it on a video file."""
from .domain import AUTO, DomainChoice, resolve_domain, use_domain
from .inference import TASKS, inference_video, init_model
from .scene_graph_inference import find_video, inference_scene_graph
from .streaming import ClipRecord, VideoTokenBank, clip_windows
from .video_annotations import video_annotations

__all__ = [
    'TASKS', 'init_model', 'inference_video', 'VideoTokenBank',
    'clip_windows', 'ClipRecord', 'AUTO', 'DomainChoice', 'resolve_domain',
    'use_domain', 'video_annotations', 'inference_scene_graph', 'find_video'
]

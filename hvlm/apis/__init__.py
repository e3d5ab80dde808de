"""Inference for users: build a trained model, run it on a video file."""
from .inference import TASKS, inference_video, init_model
from .streaming import VideoTokenBank, clip_windows

__all__ = [
    'TASKS', 'init_model', 'inference_video', 'VideoTokenBank',
    'clip_windows'
]

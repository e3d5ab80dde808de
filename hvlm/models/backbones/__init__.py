"""Video backbones (registry: ``MODELS``) and the features they return."""
from .hierarchical_video_encoder import HierarchicalVideoEncoder
from .video_features import VideoFeatures

__all__ = ['HierarchicalVideoEncoder', 'VideoFeatures']

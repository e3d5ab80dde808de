"""Video backbones (registry: ``MODELS``).

``VideoFeatures``, what they return, lives in :mod:`hvlm.structures`; it is
re-exported here for code that imported it from this package.
"""
from hvlm.structures import VideoFeatures

from .hierarchical_video_encoder import HierarchicalVideoEncoder

__all__ = ['HierarchicalVideoEncoder', 'VideoFeatures']

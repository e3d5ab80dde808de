"""Video backbones and pretrained encoders (registry: ``MODELS``).

The Hugging Face encoders import ``transformers`` only when one is built.

``VideoFeatures``, what they return, lives in :mod:`hvlm.structures`; it is
re-exported here for code that imported it from this package.
"""
from hvlm.structures import VideoFeatures

from .hf_text_encoder import HFTextEncoder
from .hf_vision_encoder import HFVisionEncoder
from .hierarchical_video_encoder import HierarchicalVideoEncoder
from .hvit import HViT
from .hvit_frame_encoder import HViTFrameEncoder
from .small_conv_net import SmallConvNet

__all__ = [
    'HierarchicalVideoEncoder', 'HFVisionEncoder', 'HFTextEncoder', 'HViT',
    'HViTFrameEncoder',
    'VideoFeatures', 'SmallConvNet'
]

"""Token mergers run at an encoder's merge points (registry: ``MERGERS``)."""
from .adaptive_token_merger import AdaptiveTokenMerger
from .attention_saliency import AttentionSaliency
from .color_saliency import ColorSaliency
from .dense_optical_flow import DenseOpticalFlow
from .edge_saliency import EdgeSaliency
from hvlm.structures.merge_info import (MergeInfo, compose, merge_tokens,
                                        unmerge)
from .motion_based_compression import MotionBasedCompression
from .motion_magnitude import MotionMagnitude
from .multi_saliency_fusion import MultiSaliencyFusion
from .spatial_pool_merger import SpatialPoolMerger
from .temporal_merge_scheduler import TemporalMergeScheduler
from .token_similarity import TokenSimilarity

__all__ = [
    'MergeInfo', 'merge_tokens', 'unmerge', 'compose', 'SpatialPoolMerger',
    'DenseOpticalFlow', 'MotionMagnitude', 'MotionBasedCompression',
    'EdgeSaliency', 'AttentionSaliency', 'ColorSaliency',
    'MultiSaliencyFusion', 'TokenSimilarity', 'AdaptiveTokenMerger',
    'TemporalMergeScheduler'
]

"""Token mergers between encoder stages (registry: ``MERGERS``)."""
from .merge_info import MergeInfo, compose, merge_tokens, unmerge
from .spatial_pool_merger import SpatialPoolMerger

__all__ = [
    'MergeInfo', 'merge_tokens', 'unmerge', 'compose', 'SpatialPoolMerger'
]

"""Building blocks shared by backbones (not registered: used by name)."""
from .mlp import Mlp
from .position_embedding import sincos_position_embedding_3d
from .roi_align import boxes_to_rois, roi_align
from .transformer_block import TransformerBlock
from .tubelet_embedding import TubeletEmbedding

__all__ = [
    'Mlp', 'sincos_position_embedding_3d', 'TransformerBlock',
    'TubeletEmbedding', 'roi_align', 'boxes_to_rois'
]

"""Building blocks shared by backbones (not registered: used by name)."""
from .clip_towers import (ClipTowers, assemble_prompts, encode_images,
                          encode_text_embeddings, encode_texts, text_mask)
from .mlp import Mlp
from .position_embedding import sincos_position_embedding_3d
from .temporal_pooling import TemporalPooling
from .roi_align import boxes_to_rois, roi_align
from .transformer_block import TransformerBlock
from .tubelet_embedding import TubeletEmbedding
from .vector_quantizer import VectorQuantizer, vector_quantize

__all__ = [
    'Mlp', 'sincos_position_embedding_3d', 'TransformerBlock',
    'TubeletEmbedding', 'ClipTowers', 'assemble_prompts', 'encode_images',
    'encode_text_embeddings', 'text_mask', 'TemporalPooling',
    'encode_texts', 'roi_align', 'boxes_to_rois'
]
__all__ += ['VectorQuantizer', 'vector_quantize']

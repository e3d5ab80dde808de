"""Token mixers of the encoder blocks (registry: ``ATTENTIONS``)."""
from .cross_memory_attention import CrossMemoryAttention
from .dfca import DFCA
from .full_attention import FullAttention
from .hierarchical_attention import HierarchicalAttentionBlock
from .linear_attention import LinearAttentionBlock
from .local_global_attention import LocalGlobalAttention
from .mamba_layer import MambaLayer
from .performer_attention import PerformerAttention
from .strided_attention import StridedAttention

__all__ = [
    'FullAttention', 'StridedAttention', 'LocalGlobalAttention',
    'HierarchicalAttentionBlock', 'CrossMemoryAttention',
    'PerformerAttention', 'LinearAttentionBlock', 'MambaLayer', 'DFCA'
]

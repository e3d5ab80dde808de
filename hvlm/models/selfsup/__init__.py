"""Self-supervised pretraining models (registry: ``MODELS``)."""
from .nt_xent import gather_with_grad, nt_xent_loss
from .simclr import SimCLR

__all__ = ['SimCLR', 'nt_xent_loss', 'gather_with_grad']

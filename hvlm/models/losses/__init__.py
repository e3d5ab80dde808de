"""Losses (registry: ``MODELS``)."""
from .classification_losses import (FocalLoss, FocalSmoothedCELoss,
                                    SoftCrossEntropyLoss, focal_loss,
                                    inverse_frequency_weights, smooth,
                                    soft_cross_entropy, to_soft_targets)

__all__ = [
    'SoftCrossEntropyLoss', 'FocalLoss', 'FocalSmoothedCELoss',
    'focal_loss', 'soft_cross_entropy', 'smooth', 'to_soft_targets',
    'inverse_frequency_weights'
]

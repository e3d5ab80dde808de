"""Image (and frame) classifiers (registry: ``MODELS``)."""
from .image_classifier import ImageClassifier, load_backbone_weights
from .image_classifier_tta import ImageClassifierTTA

__all__ = ['ImageClassifier', 'ImageClassifierTTA', 'load_backbone_weights']

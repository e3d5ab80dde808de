"""Whole models (registry: ``MODELS``)."""
from .hierarchical_vlm import HierarchicalVLM

__all__ = ['HierarchicalVLM']

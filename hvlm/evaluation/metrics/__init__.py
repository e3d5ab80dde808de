"""Metrics over a validation or test set (registry: ``METRICS``)."""
from .frame_action_metric import FrameActionMetric

__all__ = ['FrameActionMetric']

"""Task heads (registry: ``HEADS``)."""
from .action_detection_head import ActionDetectionHead
from .base_head import BaseHead
from .multi_task_head import MultiTaskHead

__all__ = ['BaseHead', 'ActionDetectionHead', 'MultiTaskHead']

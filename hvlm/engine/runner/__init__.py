from .hvlm_flexible_runner import HVLMFlexibleRunner, HVLMFSDPStrategy
from .hvlm_runner import HVLMRunner
from .loops import TestLoop, ValLoop

__all__ = [
    'HVLMRunner', 'HVLMFlexibleRunner', 'HVLMFSDPStrategy', 'ValLoop',
    'TestLoop'
]

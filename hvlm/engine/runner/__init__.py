from .hvlm_flexible_runner import HVLMFlexibleRunner, HVLMFSDPStrategy
from .hvlm_runner import HVLMRunner

__all__ = ['HVLMRunner', 'HVLMFlexibleRunner', 'HVLMFSDPStrategy']

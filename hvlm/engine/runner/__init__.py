from .hvlm_runner import HVLMRunner

__all__ = ['HVLMRunner']

"""Parameter-efficient adapters (registry: ``ADAPTERS``)."""
from .domain_selection import DomainSelection
from .lora_adapter import LoRAAdapter
from .lora_linear import LoRALinear

__all__ = ['DomainSelection', 'LoRAAdapter', 'LoRALinear']

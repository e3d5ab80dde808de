"""Parameter-efficient adapters (registry: ``ADAPTERS``): LoRA, and the
prompt learners of CLIPRecognizer."""
from .domain_selection import DomainSelection
from .dual_coop import DualCoOp
from .lora_adapter import LoRAAdapter
from .lora_linear import LoRALinear
from .prompt_learner import PromptLearner
from .stt import STT
from .video_coop import VideoCoOp
from .vidop import ViDOP
from .vilt import ViLT
from .vita import ViTA

__all__ = [
    'DomainSelection', 'LoRAAdapter', 'LoRALinear', 'PromptLearner',
    'VideoCoOp', 'DualCoOp', 'ViDOP', 'ViLT', 'ViTA', 'STT'
]

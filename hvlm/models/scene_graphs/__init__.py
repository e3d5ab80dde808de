"""Video scene-graph models (registry: ``MODELS``): objects per frame ->
(person, relation, object) triplets."""
from .frequency_baseline import FrequencyBaseline
from .scenellm import SceneLLM
from .sttran import STTran
from .stket import STKET
from .tempura import TEMPURA

__all__ = ['STTran', 'FrequencyBaseline']
__all__ += ['TEMPURA', 'STKET']
__all__ += ['SceneLLM']

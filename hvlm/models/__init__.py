"""Models: importing this package registers every component.

Sub-packages and the registry that holds their classes:

- ``data_preprocessors``, ``backbones``, ``language``, ``vlms``,
  ``recognizers``, ``scene_graphs``, ``selfsup``, ``classifiers``,
  ``losses``, ``experts``: ``MODELS``
- ``adapters``: ``ADAPTERS``
- ``attention``: ``ATTENTIONS``
- ``mergers``: ``MERGERS``
- ``heads``: ``HEADS``
- ``layers``: plain building blocks, not registered
"""
from .adapters import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .classifiers import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .experts import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .language import *  # noqa: F401,F403
from .mergers import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .recognizers import *  # noqa: F401,F403
from .selfsup import *  # noqa: F401,F403
from .scene_graphs import *  # noqa: F401,F403
from .vlms import *  # noqa: F401,F403

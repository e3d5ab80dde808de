from .checkpoint import CheckpointLoadError, load_from_local, register_safe_globals
from .setup_env import register_all_modules

register_safe_globals()

__all__ = [
    'CheckpointLoadError', 'load_from_local', 'register_safe_globals',
    'register_all_modules'
]

from .atomic_io import (atomic_write_bytes, find_resumable_checkpoint,
                        register_atomic_backend)
from .checkpoint import (CheckpointLoadError, load_from_local,
                         register_safe_globals)
from .setup_env import register_all_modules

register_safe_globals()
register_atomic_backend()

__all__ = [
    'atomic_write_bytes', 'find_resumable_checkpoint',
    'register_atomic_backend', 'CheckpointLoadError', 'load_from_local', 'register_safe_globals',
    'register_all_modules'
]

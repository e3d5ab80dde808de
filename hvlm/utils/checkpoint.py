"""Safe checkpoint loading under ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` refuses anything but tensors and plain
containers. mmengine checkpoints also hold the message hub's
``HistoryBuffer`` objects (numpy arrays inside, and their statistic methods
pickled as ``getattr(HistoryBuffer, 'mean')``), so ``--resume`` fails out of
the box. Allow-listing the real ``builtins.getattr`` would let a crafted file
call anything; instead the name ``builtins.getattr`` is mapped to
:func:`_history_buffer_getattr`, which only hands out HistoryBuffer's
statistic methods. Every other global still makes the load fail, and
:func:`load_from_local` turns that failure into an error that names the file.
"""
import os
import os.path as osp
import pickle
import re
import zipfile
from typing import Any, Callable, Optional, Union

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

__all__ = ['CheckpointLoadError', 'register_safe_globals', 'load_from_local']


class CheckpointLoadError(RuntimeError):
    """A checkpoint file that is missing, corrupt or unsafe to load."""


_BUILTIN_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """Stand-in for ``builtins.getattr`` inside checkpoints.

    Only ``HistoryBuffer.<statistic>`` lookups are answered; anything else is
    an attempt to reach arbitrary attributes and is refused.
    """
    # the class dict is filled lazily by the first instance; the four
    # built-in statistics are always allowed
    allowed = _BUILTIN_STATISTICS | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(HistoryBuffer, name)
    # a sharded tensor's pickle names its process-group record (a plain
    # named tuple) as an attribute of its class
    if name == 'ProcessGroupState' and getattr(
            obj, '__name__', None) == 'ShardedTensor' and obj in \
            _sharded_tensor_globals():
        return obj.ProcessGroupState
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: '
        'only HistoryBuffer statistics (and a sharded tensor\'s '
        'ProcessGroupState) may be looked up')


def _numpy_globals() -> list:
    """numpy objects that ndarray and scalar pickles reference."""
    try:  # numpy >= 2
        from numpy._core import multiarray
        prefix = 'numpy._core.multiarray'
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray  # type: ignore
        prefix = 'numpy.core.multiarray'
    found = [np.ndarray, np.dtype, (multiarray._reconstruct,
                                    f'{prefix}._reconstruct'),
             (multiarray.scalar, f'{prefix}.scalar')]
    dtypes = getattr(np, 'dtypes', None)  # the dtype classes, numpy >= 1.25
    if dtypes is not None:
        found += [
            getattr(dtypes, name) for name in dir(dtypes)
            if name.endswith('DType')
        ]
    return found


_REGISTERED = False


def register_safe_globals() -> None:
    """Allow what mmengine checkpoints need under ``weights_only=True``.

    Idempotent; called when :mod:`hvlm.utils` is imported.
    """
    global _REGISTERED
    if _REGISTERED:
        return
    import codecs
    torch.serialization.add_safe_globals([
        HistoryBuffer,
        (_history_buffer_getattr, 'builtins.getattr'),
        (_history_buffer_getattr, '__builtin__.getattr'),
        codecs.encode,
        *_numpy_globals(),
        *_sharded_tensor_globals(),
    ])
    _REGISTERED = True


def _sharded_tensor_globals() -> list:
    """The classes of the per-rank shards that FSDP's local state dict
    writes (``FSDPStrategy(state_dict_cfg='local')``): data classes holding
    shard offsets, sizes and placements, rebuilt against the current
    process group. None where torch.distributed is not built."""
    try:
        from torch.distributed._shard.metadata import ShardMetadata
        from torch.distributed._shard.sharded_tensor import metadata
        from torch.distributed._shard.sharded_tensor.api import ShardedTensor
        from torch.distributed._shard.sharded_tensor.shard import Shard
        from torch.distributed._shard.sharding_spec.api import \
            EnumerableShardingSpec
        from torch.distributed._shard.sharding_spec.chunk_sharding_spec \
            import ChunkShardingSpec
        from torch.distributed.remote_device import _remote_device
    except ImportError:
        return []
    return [
        ShardedTensor, ShardedTensor.ProcessGroupState, Shard, ShardMetadata,
        metadata.ShardedTensorMetadata,
        metadata.TensorProperties, metadata.MEM_FORMAT_ENCODING,
        EnumerableShardingSpec, ChunkShardingSpec, _remote_device
    ]


_GLOBAL_RE = re.compile(r'GLOBAL (\S+)')


def _describe_failure(filename: str, err: Exception) -> str:
    text = str(err)
    if isinstance(err, pickle.UnpicklingError) and 'GLOBAL' in text:
        culprit = _GLOBAL_RE.search(text)
        what = culprit.group(1) if culprit else 'an unknown global'
        return (f'refusing to load checkpoint {filename}: it references '
                f'{what}, which is not allowed with weights_only=True. A '
                'checkpoint can run code through such references; load it '
                'only if you trust its author, by converting it yourself '
                'with torch.load(..., weights_only=False).')
    if isinstance(err, pickle.UnpicklingError) and 'refusing getattr' in text:
        line = next(x for x in text.splitlines() if 'refusing getattr' in x)
        return f'refusing to load checkpoint {filename}: {line}'
    return (f'cannot read checkpoint {filename}: the file is truncated or '
            f'not a PyTorch checkpoint ({type(err).__name__}: '
            f'{text.splitlines()[0] if text else ""})')


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str,
                    map_location: Optional[Union[str, Callable]] = None
                    ) -> dict:
    """Load a local checkpoint with ``weights_only=True``.

    Replaces mmengine's loader for local paths, so ``load_from``, ``--resume``
    and ``init_cfg=dict(type='Pretrained')`` all go through it.

    Raises:
        CheckpointLoadError: missing, empty, truncated, corrupt or unsafe file.
    """
    register_safe_globals()
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise CheckpointLoadError(f'checkpoint {filename} does not exist')
    if os.path.getsize(filename) == 0:
        raise CheckpointLoadError(f'checkpoint {filename} is empty (0 bytes)')
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError,
            zipfile.BadZipFile, KeyError, OSError) as err:
        raise CheckpointLoadError(_describe_failure(filename, err)) from err

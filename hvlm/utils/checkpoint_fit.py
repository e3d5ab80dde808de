"""Load weights only when the checkpoint fits the model.

mmengine loads ``load_from`` non-strictly: a checkpoint of another width
prints one "size mismatch" line per tensor, the run goes on from random
weights and exits 0. hvlm refuses such a checkpoint everywhere it loads one
(``tools/test.py``, ``load_from``, ``--resume``, ``hvlm.apis.init_model``)
with one error that names the file, the first differing keys and shapes,
and how many differ in all.

Some keys may legitimately be absent from a checkpoint: a LoRA fine-tune
starts from a general checkpoint that has no LoRA factors, a new head starts
from its initialisation. A config lists them as regular expressions
(``load_from_allow_missing``; ``load_from_allow_unexpected`` for checkpoint
keys the model does not have), and those keys alone are let through.
A tensor whose shape differs is never loaded: it is refused, unless the
config lists it in ``load_from_allow_shape_mismatch`` (class heads of
another size, e.g. fine-tuning on EASG from an Action Genome checkpoint),
and then it keeps its initial value and is named in the log.
"""
import re
from collections import OrderedDict
from typing import List, Mapping, NamedTuple, Sequence, Tuple

import torch
import torch.nn as nn

from .checkpoint import CheckpointLoadError

__all__ = [
    'WeightsMismatch', 'find_mismatch', 'describe_mismatch',
    'load_fitting_weights', 'load_submodule_weights'
]

# Keys shown in an error before "... and N more".
SHOWN = 5


class WeightsMismatch(NamedTuple):
    """How a checkpoint's state dict differs from a model's.

    ``missing``/``unexpected``/``shapes`` exclude the keys a config
    allows; those are in ``allowed_missing``/``allowed_unexpected``/
    ``allowed_shapes``. ``shapes`` holds ``(key, shape in the checkpoint,
    shape in the model)``.
    """
    missing: List[str]
    unexpected: List[str]
    shapes: List[Tuple[str, tuple, tuple]]
    allowed_missing: List[str]
    allowed_unexpected: List[str]
    allowed_shapes: List[Tuple[str, tuple, tuple]] = []

    @property
    def refused(self) -> bool:
        return bool(self.missing or self.unexpected or self.shapes)


def _compile(patterns: Sequence[str], option: str) -> List[re.Pattern]:
    if isinstance(patterns, str):
        patterns = [patterns]
    compiled = []
    for pattern in patterns or ():
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise ValueError(f'{option}: {pattern!r} is not a regular '
                             f'expression ({err})') from err
    return compiled


def _split(keys: List[str],
           patterns: List[re.Pattern]) -> Tuple[List[str], List[str]]:
    """(keys no pattern matches, keys some pattern matches)."""
    allowed = [k for k in keys if any(p.search(k) for p in patterns)]
    chosen = set(allowed)
    return [k for k in keys if k not in chosen], allowed


def _is_tensor_entry(key: str, value) -> bool:
    # ``_extra_state`` (e.g. a trained tokenizer, serialised to bytes) is
    # read by the module's set_extra_state; its size is its content's.
    return torch.is_tensor(value) and not key.endswith('_extra_state')


def find_mismatch(model_state: Mapping[str, torch.Tensor],
                  checkpoint_state: Mapping[str, torch.Tensor],
                  allow_missing: Sequence[str] = (),
                  allow_unexpected: Sequence[str] = (),
                  allow_shape: Sequence[str] = ()) -> WeightsMismatch:
    """Compare two state dicts' keys and tensor shapes.

    Args:
        model_state: ``model.state_dict()``.
        checkpoint_state: The state dict read from the checkpoint.
        allow_missing: Regular expressions (``re.search``) of model keys the
            checkpoint may lack.
        allow_unexpected: Regular expressions of checkpoint keys the model
            may lack.
        allow_shape: Regular expressions of keys whose tensors may differ
            in shape (they are then not loaded).
    """
    missing = [k for k in model_state if k not in checkpoint_state]
    unexpected = [k for k in checkpoint_state if k not in model_state]
    missing, allowed_missing = _split(
        missing, _compile(allow_missing, 'load_from_allow_missing'))
    unexpected, allowed_unexpected = _split(
        unexpected, _compile(allow_unexpected, 'load_from_allow_unexpected'))
    shapes = [(k, tuple(v.shape), tuple(model_state[k].shape))
              for k, v in checkpoint_state.items()
              if k in model_state and _is_tensor_entry(k, v)
              and _is_tensor_entry(k, model_state[k])
              and v.shape != model_state[k].shape]
    patterns = _compile(allow_shape, 'load_from_allow_shape_mismatch')
    allowed_shapes = [s for s in shapes
                      if any(p.search(s[0]) for p in patterns)]
    shapes = [s for s in shapes if s not in allowed_shapes]
    return WeightsMismatch(missing, unexpected, shapes, allowed_missing,
                           allowed_unexpected, allowed_shapes)


def _shape(shape: tuple) -> str:
    return '[' + ', '.join(map(str, shape)) + ']'


def describe_mismatch(filename: str, mismatch: WeightsMismatch,
                      num_model_keys: int, what: str) -> str:
    """The error for a refused checkpoint: the file, a few keys, a count."""
    lines = [f'{k}: checkpoint {_shape(c)}, model {_shape(m)}'
             for k, c, m in mismatch.shapes]
    lines += [f'{k}: in the model, not in the checkpoint'
              for k in mismatch.missing]
    lines += [f'{k}: in the checkpoint, not in the model'
              for k in mismatch.unexpected]
    counts = ', '.join(
        f'{len(found)} {name}'
        for name, found in (('of another shape', mismatch.shapes),
                            ('missing', mismatch.missing),
                            ('unexpected', mismatch.unexpected)) if found)
    shown = '\n'.join(f'  {line}' for line in lines[:SHOWN])
    more = (f'\n  ... and {len(lines) - SHOWN} more'
            if len(lines) > SHOWN else '')
    return (f'checkpoint {filename} does not fit {what} ({counts}; the '
            f'model has {num_model_keys} keys):\n{shown}{more}\n'
            'Is it a checkpoint of this config? Keys a config expects to '
            'be absent from it (new heads, LoRA factors) can be listed as '
            'regular expressions in load_from_allow_missing / '
            'load_from_allow_unexpected; tensors of another shape are never '
            'loaded.')


def _state_dict_of(checkpoint: Mapping) -> Mapping:
    if 'state_dict' in checkpoint:
        return checkpoint['state_dict']
    if 'model' in checkpoint and isinstance(checkpoint['model'], Mapping):
        return checkpoint['model']
    return checkpoint


def load_fitting_weights(
        model: nn.Module,
        checkpoint: Mapping,
        filename: str,
        allow_missing: Sequence[str] = (),
        allow_unexpected: Sequence[str] = (),
        revise_keys: Sequence[Tuple[str, str]] = ((r'^module\.', ''), ),
        what: str = 'the model',
        allow_shape: Sequence[str] = ()) -> WeightsMismatch:
    """Load ``checkpoint``'s weights into ``model`` if they fit it.

    Args:
        model: The model (not its DDP wrapper).
        checkpoint: What was read from ``filename``: an mmengine checkpoint
            (``state_dict`` inside) or a bare state dict.
        filename: Named in the error.
        allow_missing / allow_unexpected / allow_shape: See
            :func:`find_mismatch`.
        revise_keys: ``(pattern, replacement)`` applied to the
            checkpoint's keys first (DDP's ``module.`` prefix by default).
        what: How the error names the model, e.g. ``'the model of config
            X'``.

    Returns:
        WeightsMismatch: what was let through (the allowed keys).

    Raises:
        CheckpointLoadError: A key differs in shape, or is missing or
            unexpected without a pattern allowing it; nothing is loaded.
    """
    source = _state_dict_of(checkpoint)
    state = OrderedDict(source.items())
    for pattern, replacement in revise_keys:
        state = OrderedDict(
            (re.sub(pattern, replacement, k), v) for k, v in state.items())
    metadata = getattr(source, '_metadata', None)
    if metadata is not None:  # module versions, read by _load_from_state_dict
        state._metadata = metadata
    model_state = model.state_dict()
    mismatch = find_mismatch(model_state, state, allow_missing,
                             allow_unexpected, allow_shape)
    if mismatch.refused:
        raise CheckpointLoadError(
            describe_mismatch(filename, mismatch, len(model_state), what))
    for key in mismatch.allowed_unexpected:
        del state[key]
    for key, _, _ in mismatch.allowed_shapes:  # keeps its initial value
        del state[key]
    model.load_state_dict(
        state,
        strict=not (mismatch.allowed_missing or mismatch.allowed_shapes))
    return mismatch


def load_submodule_weights(module: nn.Module, filename: str,
                           prefix: str = 'backbone.',
                           what: str = 'the backbone') -> None:
    """Load the ``prefix`` part of a whole model's checkpoint into
    ``module`` (e.g. the backbone of a SimCLR checkpoint, its projection
    head dropped), or a bare state dict of ``module`` itself.

    Raises:
        CheckpointLoadError: The file cannot be read, or its keys or shapes
            do not fit ``module``; the error lists the missing and the
            unexpected keys, and nothing is loaded.
    """
    from .checkpoint import load_from_local
    checkpoint = load_from_local(filename, map_location='cpu')
    state = _state_dict_of(checkpoint)
    if prefix and any(k.startswith(prefix) for k in state):
        state = {
            k[len(prefix):]: v
            for k, v in state.items() if k.startswith(prefix)
        }
    load_fitting_weights(module, state, filename, what=what)

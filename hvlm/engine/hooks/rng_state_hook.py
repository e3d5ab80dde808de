"""Carry the random number generators' state through checkpoints."""
import logging
import random
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log

from hvlm.registry import HOOKS


def get_rng_state() -> dict:
    """The state of every generator that training draws from."""
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    random.setstate(state['python'])
    np.random.set_state(state['numpy'])
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def gather_rng_states() -> List[dict]:
    """Every rank's :func:`get_rng_state`, in rank order.

    A collective: every rank must call it. Checkpoints are written by rank 0
    alone, and each rank's generators are in another state (each drew
    dropout masks of its own batches' shapes), so rank 0 needs all of them.
    """
    state = get_rng_state()
    return all_gather_object(state) if get_world_size() > 1 else [state]


def rng_state_for_rank(checkpoint: dict, rank: int,
                       world_size: int) -> Optional[dict]:
    """The RNG state that rank ``rank`` of ``world_size`` resumes from.

    Each rank takes its own state when the checkpoint was saved with as
    many ranks. Saved with another number (or by a version of hvlm that
    kept rank 0's state alone), no exact continuation exists: rank ``r``
    takes the state of saved rank ``r % saved`` and rank 0 logs a warning.
    """
    by_rank = checkpoint.get('rng_state_by_rank') or []
    if not by_rank and 'rng_state' not in checkpoint:
        return None
    saved = len(by_rank) or 1
    if saved != world_size and rank == 0:
        print_log(
            f'the checkpoint holds the RNG state of {saved} process(es) and '
            f'this run has {world_size}: rank r continues from the state of '
            f'saved rank r % {saved}, so the resumed epochs draw other random '
            'numbers than an uninterrupted run would.',
            logger='current',
            level=logging.WARNING)
    return by_rank[rank % saved] if by_rank else checkpoint['rng_state']


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Save the RNG state in checkpoints and restore it on ``--resume``.

    mmengine re-seeds a resumed run with the original seed, so the resumed
    epochs draw the same dropout masks, shuffles and augmentations as the
    first epochs did instead of the ones the interrupted run would have drawn.
    This hook stores the state of python's, numpy's and torch's generators in
    every checkpoint and restores it just before training resumes (after the
    model's weight initialisation, which draws from them too).

    Validation is made RNG-neutral (the state is put back after each
    validation), so a run that validates and a resumed run that did not
    validate the epoch before draw the same numbers. Loading weights with
    ``load_from`` (no resume) leaves the generators alone.

    With several processes every rank's state is stored
    (``rng_state_by_rank``, gathered by ``HVLMRunner.save_checkpoint``, since
    only rank 0 writes and runs this hook's ``before_save_checkpoint``) and
    each rank restores its own (:func:`rng_state_for_rank`).
    ``rng_state`` is rank 0's.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._resumed_state: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = get_rng_state()
        by_rank = getattr(runner, 'rng_states_by_rank', None)
        if by_rank and len(by_rank) > 1:
            checkpoint['rng_state_by_rank'] = by_rank

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False):
            self._resumed_state = rng_state_for_rank(
                checkpoint, getattr(runner, 'rank', 0),
                getattr(runner, 'world_size', 1))

    def before_train(self, runner) -> None:
        if self._resumed_state is not None:
            set_rng_state(self._resumed_state)
            self._resumed_state = None

    def before_val_epoch(self, runner) -> None:
        self._before_val = get_rng_state()

    def after_val_epoch(self, runner, metrics=None) -> None:
        if self._before_val is not None:
            set_rng_state(self._before_val)
            self._before_val = None

"""Carry the random number generators' state through checkpoints."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook

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
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._resumed_state: Optional[dict] = None
        self._before_val: Optional[dict] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if getattr(runner, '_resume', False) and 'rng_state' in checkpoint:
            self._resumed_state = checkpoint['rng_state']

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

"""Fault injection for tests: a hook that kills one rank mid-training."""
import os
import signal

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from hvlm.registry import HOOKS


@HOOKS.register_module()
class KillRankHook(Hook):
    """SIGKILL this process when it is ``rank`` and reaches ``at_iter``."""

    def __init__(self, rank: int = 1, at_iter: int = 2) -> None:
        self.rank = rank
        self.at_iter = at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if get_rank() == self.rank and runner.iter + 1 >= self.at_iter:
            os.kill(os.getpid(), signal.SIGKILL)

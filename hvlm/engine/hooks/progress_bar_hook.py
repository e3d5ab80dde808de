"""A progress bar for validation and test loops."""
import sys
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.utils import ProgressBar

from hvlm.registry import HOOKS


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Show a progress bar over the batches of validation and test.

    mmengine logs validation and test progress only every ``interval``
    iterations; a long evaluation then looks hung. The bar goes to the
    terminal (rank 0 only), not to the log file.
    """

    priority = 'VERY_LOW'

    def __init__(self) -> None:
        self._bar: Optional[ProgressBar] = None

    def _start(self, dataloader) -> None:
        if is_main_process():
            # the current stdout: ProgressBar's default is bound at import
            self._bar = ProgressBar(len(dataloader), file=sys.stdout)

    def _step(self) -> None:
        if self._bar is None:
            return
        self._bar.update()
        if self._bar.completed >= self._bar.task_num:
            # end the line before the logger prints the metrics
            self._bar.file.write('\n')
            self._bar.file.flush()
            self._bar = None

    def _stop(self) -> None:
        self._bar = None

    def before_val_epoch(self, runner) -> None:
        self._start(runner.val_dataloader)

    def before_test_epoch(self, runner) -> None:
        self._start(runner.test_dataloader)

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._step()

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._step()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._stop()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._stop()

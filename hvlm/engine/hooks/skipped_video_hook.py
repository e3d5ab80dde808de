"""Count and name the videos the data pipeline could not read."""
from typing import List, Optional, Sequence, Tuple

from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook

from hvlm.registry import HOOKS


@HOOKS.register_module()
class SkippedVideoHook(Hook):
    """Log, once per epoch, every video skipped as unreadable.

    ``VideoDataset`` skips a corrupt, empty, missing or too-short video with a
    warning at the moment it happens (from whichever DataLoader worker hit
    it) and ``video_collate`` puts ``(filename, reason)`` pairs in the batch
    under ``skipped``. This hook adds them up over the epoch and all ranks,
    logs the count and the files, and records the count as the scalar
    ``<mode>/skipped_videos`` so it shows in the log and in TensorBoard:
    the training lines carry the last finished epoch's count as
    ``skipped_videos`` (iteration axis), the validation lines their own as
    ``val/skipped_videos`` (epoch axis, see ``PhaseLoggerHook``).

    Args:
        max_names: How many file names to print per epoch.
    """

    priority = 'LOW'

    def __init__(self, max_names: int = 20) -> None:
        self.max_names = max_names
        self._skipped: List[Tuple[str, str]] = []

    def _collect(self, data_batch: Optional[dict]) -> None:
        if isinstance(data_batch, dict):
            self._skipped.extend(data_batch.get('skipped') or [])

    def _report(self, runner, mode: str) -> None:
        skipped = self._skipped
        self._skipped = []
        if get_world_size() > 1:
            skipped = [item for part in all_gather_object(skipped)
                       for item in part]
        runner.message_hub.update_scalar(f'{mode}/skipped_videos',
                                         len(skipped))
        if not skipped:
            return
        unique = sorted(set(map(tuple, skipped)))
        names = '\n'.join(f'  {name}: {reason}'
                          for name, reason in unique[:self.max_names])
        more = len(unique) - self.max_names
        tail = f'\n  ... and {more} more' if more > 0 else ''
        # The epoch in the message also keeps mmengine's logger, which
        # drops a warning identical to an earlier one, from hiding a later
        # epoch's report on the same files.
        where = dict(
            train=f'train epoch {runner.epoch + 1}',
            val=f'val epoch {runner.epoch}').get(mode, mode)
        runner.logger.warning(
            f'{where}: skipped {len(skipped)} unreadable video clip(s) '
            f'from {len(unique)} file(s):\n{names}{tail}')

    def after_train_iter(self, runner, batch_idx: int,
                         data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        self._collect(data_batch)

    def after_val_iter(self, runner, batch_idx: int,
                       data_batch: Optional[dict] = None,
                       outputs: Optional[Sequence] = None) -> None:
        self._collect(data_batch)

    def after_test_iter(self, runner, batch_idx: int,
                        data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        self._collect(data_batch)

    def after_train_epoch(self, runner) -> None:
        self._report(runner, 'train')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'val')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._report(runner, 'test')

"""Fault injection for tests: a hook that changes the data directory under
the running job, as a user or a sync tool would."""
import os
import os.path as osp
import shutil
from typing import Dict, Sequence

from mmengine.dist import get_rank
from mmengine.hooks import Hook

from hvlm.registry import HOOKS


@HOOKS.register_module()
class DataDirFaultHook(Hook):
    """At the start of epoch ``at_epoch`` (1-based), before its DataLoader
    iterator (and so any worker's prefetch) exists, change the files of the
    data set the run is training on.

    Paths are relative to the parent of the training split's ``data_root``
    (the data set root, e.g. ``'training/videos/x.mp4'``).

    Args:
        at_epoch: The first epoch that sees the changed directory.
        delete: Files to remove.
        truncate: Files to cut to half their size (a copy interrupted).
        replace: ``target -> source``: overwrite ``target`` with a copy of
            another (valid) video.
        add: ``new file -> source``: files that appear in the directory.
    """

    def __init__(self,
                 at_epoch: int = 2,
                 delete: Sequence[str] = (),
                 truncate: Sequence[str] = (),
                 replace: Dict[str, str] = None,
                 add: Dict[str, str] = None) -> None:
        self.at_epoch = at_epoch
        self.delete = list(delete)
        self.truncate = list(truncate)
        self.replace = dict(replace or {})
        self.add = dict(add or {})

    def before_train_epoch(self, runner) -> None:
        if runner.epoch + 1 != self.at_epoch or get_rank() != 0:
            return
        root = osp.dirname(
            osp.normpath(runner.train_dataloader.dataset.data_root))
        for name in self.delete:
            os.remove(osp.join(root, name))
        for name in self.truncate:
            path = osp.join(root, name)
            os.truncate(path, osp.getsize(path) // 2)
        for table in (self.replace, self.add):
            for target, source in table.items():
                # copy next to the target, then rename: a reader sees the
                # old file or the new one, as with rsync
                tmp = osp.join(root, target) + '.part'
                shutil.copyfile(osp.join(root, source), tmp)
                os.replace(tmp, osp.join(root, target))
        runner.logger.info(
            f'DataDirFaultHook: before epoch {self.at_epoch} deleted '
            f'{self.delete}, truncated {self.truncate}, replaced '
            f'{sorted(self.replace)}, added {sorted(self.add)} under {root}')

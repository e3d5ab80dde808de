"""UCF-101 split files."""
import os.path as osp
from typing import Dict, List

from hvlm.registry import DATASETS
from .base import Entry, RecognitionDataset, read_lines


@DATASETS.register_module()
class UCF101Dataset(RecognitionDataset):
    """UCF-101 as distributed: ``UCF-101/<Class>/v_<Class>_gXX_cYY.avi``
    and the ``ucfTrainTestlist`` files.

    ``class_index`` (``classInd.txt``) numbers the classes from 1, and its
    order is the label order (not sorted order: ``Hammering`` is label 36
    and ``HammerThrow`` 35, ``JumpingJack`` 47 and ``JumpRope`` 48)::

        1 ApplyEyeMakeup
        2 ApplyLipstick

    ``ann_file`` is ``trainlist0N.txt`` (path and label) or
    ``testlist0N.txt`` (path only; the label is the class folder's)::

        ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1
        ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi

    A class folder missing from ``classInd.txt``, a label that disagrees
    with the folder, or a malformed line is an error naming file and line.
    """

    def read_classes(self) -> List[str]:
        if not self.class_index:
            raise ValueError('UCF101Dataset: class_index (classInd.txt) must '
                             'be given')
        classes: List[str] = []
        for lineno, line in read_lines(self.class_index,
                                       'UCF101Dataset class_index'):
            parts = line.split()
            where = f'{self.class_index}:{lineno}'
            if len(parts) != 2 or not parts[0].isdigit():
                raise ValueError(f'{where}: expected "<id> <ClassName>", '
                                 f'got {line!r}')
            if int(parts[0]) != len(classes) + 1:
                raise ValueError(
                    f'{where}: id {parts[0]} but ids must count 1, 2, ... '
                    f'in file order (expected {len(classes) + 1})')
            if parts[1] in classes:
                raise ValueError(f'{where}: class {parts[1]!r} is listed '
                                 'twice')
            classes.append(parts[1])
        if not classes:
            raise ValueError(f'{self.class_index}: no class listed')
        return classes

    def read_entries(self, classes: List[str]) -> List[Entry]:
        index: Dict[str, int] = {c: i for i, c in enumerate(classes)}
        entries = []
        for lineno, line in read_lines(self._ann_path,
                                       'UCF101Dataset ann_file'):
            where = f'{self._ann_path}:{lineno}'
            parts = line.split()
            if len(parts) not in (1, 2):
                raise ValueError(f'{where}: expected "<Class>/<video>.avi" '
                                 f'with an optional label, got {line!r}')
            path = parts[0].replace('\\', '/')
            folder = path.split('/')[0] if '/' in path else None
            if folder is None:
                raise ValueError(f'{where}: {path!r} has no class folder '
                                 '(expected <Class>/<video>.avi)')
            if folder not in index:
                raise ValueError(
                    f'{where}: class {folder!r} is not in '
                    f'{self.class_index} ({len(classes)} classes)')
            label = index[folder]
            if len(parts) == 2:
                if not parts[1].isdigit() or \
                        not 1 <= int(parts[1]) <= len(classes):
                    raise ValueError(
                        f'{where}: label {parts[1]!r} is not a class id '
                        f'1..{len(classes)} of {self.class_index}')
                if int(parts[1]) - 1 != label:
                    raise ValueError(
                        f'{where}: label {parts[1]} is '
                        f'{classes[int(parts[1]) - 1]!r} in '
                        f'{self.class_index} but the video is in folder '
                        f'{folder!r} (id {label + 1})')
            entries.append((osp.normpath(path), label, where))
        return entries

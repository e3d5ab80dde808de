"""HMDB-51 split files."""
import os
import os.path as osp
import re
from typing import List

from hvlm.registry import DATASETS
from .base import Entry, RecognitionDataset, read_lines

_SPLIT_FILE = re.compile(r'^(.+)_test_split(\d+)\.txt$')
SUBSETS = {'train': 1, 'test': 2}


@DATASETS.register_module()
class HMDB51Dataset(RecognitionDataset):
    """HMDB-51 as distributed: ``hmdb51/<class>/<video>.avi`` and the
    ``testTrainMulti_7030_splits`` folder, one file per class and split::

        brush_hair_test_split1.txt:
            April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1
            April_09_brush_hair_u_nm_np1_ba_goo_1.avi 2
            ...

    where ``1`` marks a training video, ``2`` a test video and ``0`` one
    used in neither. ``ann_file`` is that folder; ``split`` (1-3) and
    ``subset`` (``'train'`` or ``'test'``) pick the lines. Classes are the
    file names' class parts, sorted (the label order MMAction2 and the
    papers use).

    Args:
        split (int): Which of the three splits.
        subset (str): ``'train'`` or ``'test'``.
    """

    def __init__(self, *args, split: int = 1, subset: str = 'train',
                 **kwargs) -> None:
        if subset not in SUBSETS:
            raise ValueError(f"HMDB51Dataset: subset={subset!r} must be "
                             f"one of {tuple(SUBSETS)}")
        self.split = int(split)
        self.subset = subset
        super().__init__(*args, **kwargs)

    def _split_files(self) -> dict:
        if not osp.isdir(self._ann_path or ''):
            raise FileNotFoundError(
                f'HMDB51Dataset: ann_file {self._ann_path!r} must be the '
                'folder of <class>_test_split<N>.txt files')
        files = {}
        for name in sorted(os.listdir(self._ann_path)):
            match = _SPLIT_FILE.match(name)
            if match and int(match.group(2)) == self.split:
                files[match.group(1)] = osp.join(self._ann_path, name)
        if not files:
            raise FileNotFoundError(
                f'HMDB51Dataset: no *_test_split{self.split}.txt in '
                f'{self._ann_path}')
        return files

    def read_classes(self) -> List[str]:
        return sorted(self._split_files())

    def read_entries(self, classes: List[str]) -> List[Entry]:
        files = self._split_files()
        wanted = SUBSETS[self.subset]
        entries = []
        for label, name in enumerate(classes):
            path = files[name]
            for lineno, line in read_lines(path, 'HMDB51 split file'):
                parts = line.split()
                where = f'{path}:{lineno}'
                if len(parts) != 2 or parts[1] not in ('0', '1', '2'):
                    raise ValueError(f'{where}: expected "<video>.avi '
                                     f'<0|1|2>", got {line!r}')
                if int(parts[1]) == wanted:
                    entries.append((osp.join(name, parts[0]), label, where))
        return entries

"""MMAction2's video list files."""
from typing import List

from hvlm.registry import DATASETS
from .base import Entry, RecognitionDataset, read_lines


@DATASETS.register_module()
class VideoListDataset(RecognitionDataset):
    """MMAction2's ``VideoDataset`` list: one ``<path> <label>`` per line,
    the path relative to ``data_root``, the label counted from 0::

        some/folder/video_0001.mp4 3

    ``class_index`` names the classes, one per line in label order (the
    list itself has only numbers, and prompts need names).
    """

    def read_classes(self) -> List[str]:
        if not self.class_index:
            raise ValueError(
                'VideoListDataset: class_index must name a file with one '
                'class name per line in label order (prompts need names)')
        return [line for _, line in read_lines(
            self.class_index, 'VideoListDataset class_index')]

    def read_entries(self, classes: List[str]) -> List[Entry]:
        entries = []
        for lineno, line in read_lines(self._ann_path,
                                       'VideoListDataset ann_file'):
            where = f'{self._ann_path}:{lineno}'
            path, _, label = line.rpartition(' ')
            if not path or not label.isdigit():
                raise ValueError(f'{where}: expected "<path> <label>", got '
                                 f'{line!r}')
            if int(label) >= len(classes):
                raise ValueError(
                    f'{where}: label {label} but {self.class_index} names '
                    f'{len(classes)} classes (labels 0..{len(classes) - 1})')
            entries.append((path.strip(), int(label), where))
        return entries

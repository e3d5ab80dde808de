"""Kinetics CSV annotations."""
import csv
import os.path as osp
from typing import List, Tuple

from hvlm.registry import DATASETS
from .base import Entry, RecognitionDataset

COLUMNS = ('label', 'youtube_id', 'time_start', 'time_end', 'split')


def read_kinetics_csv(path: str) -> List[Tuple[int, dict]]:
    """``(line number, row)`` of a Kinetics CSV; a missing column or a
    non-integer time is an error naming file and line."""
    if not path or not osp.isfile(path):
        raise FileNotFoundError(f'Kinetics CSV {path!r} does not exist')
    with open(path, encoding='utf-8', newline='') as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or ()
        missing = [c for c in COLUMNS[:4] if c not in header]
        if missing:
            raise ValueError(f'{path}:1: header {reader.fieldnames} lacks '
                             f'{missing}; expected {",".join(COLUMNS)}')
        rows = []
        for row in reader:
            where = f'{path}:{reader.line_num}'
            for key in ('time_start', 'time_end'):
                try:
                    row[key] = int(float(row[key]))
                except (TypeError, ValueError):
                    raise ValueError(f'{where}: {key}={row[key]!r} is not '
                                     'a number of seconds') from None
            rows.append((reader.line_num, row))
    return rows


@DATASETS.register_module()
class KineticsDataset(RecognitionDataset):
    """Kinetics-400/600/700 from the CSV files of the release::

        label,youtube_id,time_start,time_end,split
        abseiling,--07WQ2iBlw,1,11,train

    A row's clip is ``video_pattern`` formatted with the row, by default
    ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4`` under
    ``data_root`` (write ``'{label}/{youtube_id}_...'`` for per-class
    folders). The classes are the sorted labels of ``class_index``, the
    training CSV, so that the validation set shares its label order
    (``class_index`` defaults to ``ann_file``).

    Args:
        video_pattern (str): Clip file name, formatted with the CSV row.
    """

    def __init__(self,
                 *args,
                 video_pattern: str = '{youtube_id}_{time_start:06d}_'
                 '{time_end:06d}.mp4',
                 **kwargs) -> None:
        self.video_pattern = video_pattern
        super().__init__(*args, **kwargs)

    def read_classes(self) -> List[str]:
        source = self.class_index or self._ann_path
        return sorted({row['label'] for _, row in read_kinetics_csv(source)})

    def read_entries(self, classes: List[str]) -> List[Entry]:
        index = {c: i for i, c in enumerate(classes)}
        entries = []
        for lineno, row in read_kinetics_csv(self._ann_path):
            where = f'{self._ann_path}:{lineno}'
            if row['label'] not in index:
                raise ValueError(
                    f'{where}: label {row["label"]!r} is not among the '
                    f'{len(classes)} labels of '
                    f'{self.class_index or self._ann_path}')
            entries.append((self.video_pattern.format(**row),
                            index[row['label']], where))
        return entries

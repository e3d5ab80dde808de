"""hvlm's own split layout, one action label per video."""
import logging
import os.path as osp
from collections import defaultdict
from typing import List, Optional, Sequence

from mmengine.logging import print_log

from hvlm.registry import DATASETS
from .base import Entry, RecognitionDataset


@DATASETS.register_module()
class ActionVideoDataset(RecognitionDataset):
    """A split of :class:`VideoDataset`'s layout (``videos/``,
    ``annotations/action_detection.json``, optional ``metadata.json``)
    read as a recognition set: a video's label is its **dominant action**,
    the label whose segments cover the most seconds (ties: the first in
    class order). Videos without action annotation are left out (counted
    in a log line).

    The classes are the sorted action labels of ``vocab_root``'s split (a
    bare name is a sibling of ``data_root``, as in VideoDataset), so every
    split shares the training split's label order. ``ann_file`` is unused:
    the split directory is ``data_root``.

    Args:
        vocab_root (str, optional): Split whose labels are the classes;
            defaults to ``data_root``.
        domains (Sequence[str], optional): Keep only these domains.
        demo (dict, optional): As VideoDataset: generate the demo data
            first when ``data_root`` lies under ``demo['root']``.
    """

    def __init__(self,
                 data_root: str,
                 ann_file: str = '',
                 vocab_root: Optional[str] = None,
                 domains: Optional[Sequence[str]] = None,
                 demo: Optional[dict] = None,
                 video_dir: str = 'videos',
                 ann_dir: str = 'annotations',
                 **kwargs) -> None:
        self.video_dir = video_dir
        self.ann_dir = ann_dir
        self.domains = None if domains is None else tuple(
            [domains] if isinstance(domains, str) else domains)
        if demo is not None:
            self._maybe_generate_demo(data_root, demo)
        self.vocab_root = self._resolve_vocab_root(data_root, vocab_root)
        super().__init__(ann_file=ann_file, data_root=data_root, **kwargs)

    def read_classes(self) -> List[str]:
        _, annotations = self._read_split(self.vocab_root)
        labels = {
            a['label']
            for items in annotations.get('action_detection', {}).values()
            for a in items
        }
        if not labels:
            raise ValueError(
                f'ActionVideoDataset: {self.vocab_root}/{self.ann_dir}/'
                'action_detection.json has no action label')
        return sorted(labels)

    def read_entries(self, classes: List[str]) -> List[Entry]:
        videos, annotations = self._read_split(self.data_root)
        actions = annotations.get('action_detection', {})
        index = {c: i for i, c in enumerate(classes)}
        entries, unlabelled = [], 0
        for vid, video in videos.items():
            if self.domains is not None and \
                    video['domain'] not in self.domains:
                continue
            cover = defaultdict(float)
            for a in actions.get(vid, ()):
                if a['label'] in index:
                    cover[a['label']] += a['end'] - a['start']
            if not cover:
                unlabelled += 1
                continue
            label = min(cover, key=lambda c: (-cover[c], index[c]))
            # entries are relative to data_root (the base joins them);
            # the split reader's filename already holds a relative root
            path = video['filename']
            if not osp.isabs(path):
                path = osp.relpath(path, self.data_root)
            entries.append((path, index[label], f'{self.data_root}:{vid}'))
        if unlabelled:
            print_log(
                f'ActionVideoDataset({self.data_root}): {unlabelled} videos '
                'have no action of the classes and are left out',
                logger='current', level=logging.WARNING)
        return entries

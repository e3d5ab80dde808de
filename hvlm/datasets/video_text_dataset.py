"""Segment-text pairs from hvlm's video layout, for video-text pretraining
and its zero-shot / retrieval evaluation."""
import logging
from typing import List, Sequence

from mmengine.logging import print_log

from hvlm.registry import DATASETS
from .video_dataset import VideoDataset


def label_to_text(label: str) -> str:
    """An action label as words: ``'roll_right'`` -> ``'roll right'``."""
    return ' '.join(label.replace('_', ' ').split())


def temporal_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(start, end)`` intervals."""
    inter = max(0., min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.


@DATASETS.register_module()
class VideoTextDataset(VideoDataset):
    """One item per annotated segment of a video, with its texts.

    The videos and annotation files are :class:`VideoDataset`'s layout. Each
    action of ``action_detection.json`` is an item: its time span, its label
    and the label rendered as text (``label_template`` filled with the label,
    ``_`` turned into spaces: ``'a video of roll right.'``), and the caption
    of ``video_captioning.json`` whose span overlaps it best, when that
    temporal IoU is at least ``caption_iou``. A caption that pairs with no
    action is an item of its own (``label_id = -1``), so captions of videos
    without action annotation are used too. Segments shorter than
    ``min_duration`` seconds are dropped and counted in the log.

    One data info (the input of ``pipeline``; ``SampleSegmentFrames`` reads
    ``segment``, ``SampleText`` chooses ``text``)::

        dict(video_id='sports_training_0003', filename=..., domain=...,
             domain_id=1, duration=7.4, segment=(0.0, 2.71),
             label='roll_right', label_id=5,
             label_text='a video of roll right.',
             caption='a white circle rolls to the right across the field',
             tasks=set(), actions=[], qa_pairs=[], captions=[])

    Args:
        label_template (str): Format string with one ``{}`` for the label.
        caption_iou (float): Least temporal IoU pairing a caption with an
            action.
        min_duration (float): Shortest segment kept, in seconds.
        exclude_labels (Sequence[str]): Actions whose segments are dropped
            (with their captions), so that a pretraining leaves classes out
            for a later zero-shot or few-shot evaluation on them; they stay
            in ``metainfo['classes']``.
        **kwargs: :class:`VideoDataset` arguments (``data_root``,
            ``pipeline``, ``domains``, ``vocab_root``, ``demo``, ...).
    """

    def __init__(self,
                 *args,
                 label_template: str = 'a video of {}.',
                 caption_iou: float = 0.5,
                 min_duration: float = 0.2,
                 exclude_labels: Sequence[str] = (),
                 **kwargs) -> None:
        if label_template.count('{}') != 1:
            raise ValueError(
                f'VideoTextDataset: label_template={label_template!r} must '
                'hold exactly one {} for the label')
        if not 0 < caption_iou <= 1:
            raise ValueError(
                f'VideoTextDataset: caption_iou={caption_iou} must be in '
                '(0, 1]')
        self.label_template = label_template
        self.caption_iou = caption_iou
        self.min_duration = min_duration
        self.exclude_labels = (exclude_labels, ) if isinstance(
            exclude_labels, str) else tuple(exclude_labels)
        kwargs.setdefault('tasks', ('action_detection', 'video_captioning'))
        super().__init__(*args, **kwargs)

    def label_text(self, label: str) -> str:
        return self.label_template.format(label_to_text(label))

    def class_texts(self) -> List[str]:
        """Every class of ``metainfo['classes']`` as text, in label order
        (made once: every item carries it)."""
        if getattr(self, '_class_texts', None) is None:
            self._class_texts = [
                self.label_text(c) for c in self._metainfo['classes']
            ]
        return self._class_texts

    def load_data_list(self) -> List[dict]:
        classes = self._metainfo['classes']
        unknown = [c for c in self.exclude_labels if c not in classes]
        if unknown:
            raise ValueError(
                f'VideoTextDataset: exclude_labels={self.exclude_labels} '
                f'names {unknown}, not among the classes {tuple(classes)}')
        items, short, excluded = [], 0, 0
        for video in super().load_data_list():
            base = {
                k: video[k]
                for k in ('video_id', 'filename', 'domain', 'domain_id',
                          'duration')
            }
            base.update(tasks=set(), actions=[], qa_pairs=[], captions=[])
            captions = [(c['text'], (float(c['start']), float(c['end'])))
                        for c in video['captions']]
            used = set()
            segments = []
            for action in video['actions']:
                span = (float(action['start']), float(action['end']))
                best, best_iou = None, 0.
                for i, (_, cspan) in enumerate(captions):
                    iou = temporal_iou(span, cspan)
                    if iou > best_iou:
                        best, best_iou = i, iou
                caption = None
                if best is not None and best_iou >= self.caption_iou:
                    caption = captions[best][0]
                    used.add(best)
                segments.append(
                    dict(
                        segment=span,
                        label=action['label'],
                        label_id=action['label_id'],
                        label_text=self.label_text(action['label']),
                        caption=caption))
            for i, (text, span) in enumerate(captions):
                if i not in used:
                    segments.append(
                        dict(
                            segment=span,
                            label=None,
                            label_id=-1,
                            label_text=None,
                            caption=text))
            for seg in segments:
                if seg['label'] in self.exclude_labels:
                    excluded += 1
                    continue
                if seg['segment'][1] - seg['segment'][0] < self.min_duration:
                    short += 1
                    continue
                items.append(dict(base, **seg))
        if short:
            print_log(
                f'VideoTextDataset({self.data_root}): {short} segments '
                f'shorter than min_duration={self.min_duration} s dropped',
                logger='current',
                level=logging.WARNING)
        if excluded:
            print_log(
                f'VideoTextDataset({self.data_root}): {excluded} segments of '
                f'exclude_labels={self.exclude_labels} left out',
                logger='current')
        if not items:
            raise ValueError(
                f'VideoTextDataset({self.data_root}): no segment with an '
                'action label or a caption; it needs action_detection.json '
                'or video_captioning.json entries with times')
        return items

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['class_texts'] = list(self.class_texts())
        return info

"""What a data split already says about one video: its ground-truth
actions and its domain, for the timeline and the domain default."""
import json
import os.path as osp
from typing import List, Optional, Tuple

__all__ = ['video_annotations']


def _entry(path: str, video_id: str) -> Optional[dict]:
    with open(path) as f:
        entries = json.load(f)
    if not isinstance(entries, list):
        raise ValueError(f'{path} must hold a list of entries with '
                         f'"video_id", got {type(entries).__name__}')
    return next((e for e in entries
                 if isinstance(e, dict) and e.get('video_id') == video_id),
                None)


def video_annotations(video: str,
                      ann_file: Optional[str] = None
                      ) -> Tuple[Optional[List[dict]], Optional[str]]:
    """The ground-truth actions and the domain of ``video``.

    The video's id is its file name without extension, as in
    :class:`hvlm.datasets.VideoDataset`. Actions are read from ``ann_file``
    (an ``action_detection.json``) or, without one, from the data layout
    ``<split>/videos/<id>.mp4`` -> ``<split>/annotations/
    action_detection.json``; the domain from ``metadata.json`` beside it.

    Args:
        video (str): The video file.
        ann_file (str, optional): An ``action_detection.json``.

    Returns:
        tuple: ``actions`` (``start``, ``end``, ``label`` each; ``None``
        when no file lists the video) and ``domain`` (``None`` when
        unknown).

    Raises:
        FileNotFoundError: ``ann_file`` is given but missing.
        ValueError: ``ann_file`` is given and does not list the video.
    """
    video_id = osp.splitext(osp.basename(str(video)))[0]
    ann_dir = osp.join(osp.dirname(osp.dirname(osp.abspath(str(video)))),
                       'annotations')
    found = ann_file or osp.join(ann_dir, 'action_detection.json')
    actions = None
    if ann_file is not None and not osp.isfile(ann_file):
        raise FileNotFoundError(f'--ann-file {ann_file} does not exist')
    if osp.isfile(found):
        entry = _entry(found, video_id)
        if entry is None and ann_file is not None:
            raise ValueError(f'{ann_file} has no entry with video_id '
                             f'{video_id!r} (the video file name without '
                             'extension)')
        if entry is not None:
            actions = [
                dict(start=float(a['start']), end=float(a['end']),
                     label=str(a['label'])) for a in entry.get('actions', ())
            ]
    meta = osp.join(osp.dirname(osp.abspath(found)), 'metadata.json')
    domain = None
    if osp.isfile(meta):
        entry = _entry(meta, video_id)
        domain = None if entry is None else entry.get('domain')
    return actions, domain

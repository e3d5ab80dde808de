"""Per-frame object detections for SGDET, in a file any detector can write.

SGDET feeds a scene-graph model the boxes of a detector instead of the
ground truth. The detector stays outside hvlm: it writes one file, in
either of two formats that load without running code (no pickle).

``.npz`` (``numpy.savez``; read with ``allow_pickle=False``)::

    frame_names  str   [F]     frame keys, 'VID.mp4/000089.png' (the keys of
                               Action Genome's pickles); a frame listed here
                               with no detection row means "nothing found"
    frame_index  int   [D]     each detection's frame, an index into
                               frame_names
    boxes        float [D, 4]  x1, y1, x2, y2 in the frame's original pixels
    labels       str   [D]     class names as in object_classes.txt (either
                 or int [D]    spelling), or indices into the data set's
                               classes (0 __background__, 1 person)
    scores       float [D]     detection scores in [0, 1]
    features     float [D, C]  optional: the detector's RoI features

``.json``::

    {"frames": {"VID.mp4/000089.png": {
        "boxes": [[x1, y1, x2, y2], ...], "labels": ["person", ...],
        "scores": [0.98, ...], "features": [[...], ...]  (optional)}}}

A frame the data set keeps but the file does not list is bad input (the
detector never saw it), as are a box with no area or wholly outside the
image and an unknown label: :class:`ActionGenomeDataset` names the file and
key, or skips and counts them, as its ``on_bad`` says.

:func:`detections_from_ground_truth` writes such a file from the ground
truth with box jitter, dropped objects and false positives, so that SGDET
trains on the demo data (and a pipeline can be checked) without a detector.
"""
import json
import os
import os.path as osp
from typing import Dict, Optional, Sequence

import numpy as np

from .exceptions import AnnotationError
from .safe_pickle import restricted_load

__all__ = ['load_detections', 'write_detections',
           'detections_from_ground_truth', 'ensure_demo_detections']

FORMATS = ('.npz', '.json')


def _check_format(path: str) -> str:
    ext = osp.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise ValueError(f'detections file {path}: unknown format {ext!r}; '
                         f'expected one of {FORMATS}')
    return ext


def _frame(path: str, key: str, boxes, labels, scores,
           features=None) -> dict:
    """One frame's arrays, their shapes checked (the file and key named)."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) \
        if len(boxes) == 0 else np.asarray(boxes, np.float32)
    labels = np.asarray(labels)
    scores = np.asarray(scores, np.float32)
    D = len(boxes)
    if boxes.shape != (D, 4) or labels.shape != (D, ) or \
            scores.shape != (D, ):
        raise AnnotationError(
            f'{path}[{key!r}]: expected boxes [D, 4], labels [D] and scores '
            f'[D]; found {boxes.shape}, {labels.shape}, {scores.shape}')
    out = dict(boxes=boxes, labels=labels, scores=scores)
    if features is not None:
        features = np.asarray(features, np.float32)
        if features.ndim != 2 or len(features) != D:
            if not (D == 0 and features.size == 0):
                raise AnnotationError(
                    f'{path}[{key!r}]: features must be [D={D}, C], found '
                    f'{features.shape}')
        out['features'] = features.reshape(D, -1)
    return out


def load_detections(path: str) -> Dict[str, dict]:
    """Read a detections file (see the module doc).

    Returns:
        dict: frame key -> ``dict(boxes [D, 4] float32, labels [D] (str or
        int), scores [D] float32, features [D, C] float32 if present)``.
    """
    ext = _check_format(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'detections file {path} does not exist')
    if ext == '.json':
        with open(path) as f:
            try:
                data = json.load(f)
            except ValueError as e:
                raise AnnotationError(f'{path}: not valid JSON ({e})') from e
        frames = data.get('frames') if isinstance(data, dict) else None
        if not isinstance(frames, dict):
            raise AnnotationError(f'{path}: expected {{"frames": {{key: '
                                  '{boxes, labels, scores}}}}')
        out = {}
        for key, d in frames.items():
            if not isinstance(d, dict):
                raise AnnotationError(f'{path}[{key!r}]: expected a dict of '
                                      'boxes, labels, scores')
            missing = [k for k in ('boxes', 'labels', 'scores') if k not in d]
            if missing:
                raise AnnotationError(f'{path}[{key!r}]: missing {missing}')
            out[key] = _frame(path, key, d['boxes'], d['labels'],
                              d['scores'], d.get('features'))
        with_features = {'features' in d for d in out.values()}
        if len(with_features) > 1:
            raise AnnotationError(f'{path}: "features" is given for some '
                                  'frames only')
        return out
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as e:  # object arrays need pickle: refused
        raise AnnotationError(f'{path}: cannot be read without pickle '
                              f'({e})') from e
    with npz:
        need = ('frame_names', 'frame_index', 'boxes', 'labels', 'scores')
        missing = [k for k in need if k not in npz.files]
        if missing:
            raise AnnotationError(f'{path}: missing arrays {missing}; has '
                                  f'{npz.files}')
        try:
            arrays = {k: npz[k] for k in npz.files}
        except ValueError as e:
            raise AnnotationError(f'{path}: an array needs pickle to load, '
                                  f'refused ({e})') from e
    names = [str(n) for n in arrays['frame_names']]
    index = arrays['frame_index'].astype(np.int64)
    D = len(index)
    if len(index) and (index.min() < 0 or index.max() >= len(names)):
        raise AnnotationError(
            f"{path}['frame_index']: values must lie in 0..{len(names) - 1}")
    for k in ('boxes', 'labels', 'scores', 'features'):
        if k in arrays and len(arrays[k]) != D:
            raise AnnotationError(f'{path}[{k!r}]: {len(arrays[k])} rows, '
                                  f'frame_index has {D}')
    order = np.argsort(index, kind='stable')
    starts = np.searchsorted(index[order], np.arange(len(names) + 1))
    out = {}
    for f, key in enumerate(names):
        rows = order[starts[f]:starts[f + 1]]
        out[key] = _frame(
            path, key, arrays['boxes'][rows], arrays['labels'][rows],
            arrays['scores'][rows],
            arrays['features'][rows] if 'features' in arrays else None)
    return out


def write_detections(path: str, frames: Dict[str, dict]) -> str:
    """Write ``{frame key: dict(boxes, labels, scores[, features])}`` to
    ``path`` (``.npz`` or ``.json``, by its extension); returns ``path``."""
    ext = _check_format(path)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    frames = {k: _frame(path, k, d['boxes'], d['labels'], d['scores'],
                        d.get('features')) for k, d in frames.items()}
    with_features = [('features' in d) for d in frames.values()]
    if any(with_features) and not all(with_features):
        raise ValueError(f'{path}: features given for some frames only')
    if ext == '.json':
        data = {k: {f: v.tolist() for f, v in d.items()}
                for k, d in frames.items()}
        with open(path, 'w') as f:
            json.dump(dict(frames=data), f)
        return path
    keys = list(frames)
    arrays = dict(
        frame_names=np.asarray(keys, dtype=str),
        frame_index=np.concatenate(
            [np.full(len(frames[k]['boxes']), i, np.int64)
             for i, k in enumerate(keys)] or [np.zeros(0, np.int64)]),
    )
    for name in ('boxes', 'labels', 'scores') + (
            ('features', ) if keys and all(with_features) else ()):
        parts = [frames[k][name] for k in keys]
        arrays[name] = np.concatenate(parts) if parts else np.zeros(0)
    if arrays['labels'].dtype == object:
        arrays['labels'] = arrays['labels'].astype(str)
    with open(path, 'wb') as f:
        np.savez(f, **arrays)
    return path


def _jitter(rng: np.random.Generator, box: np.ndarray, jitter: float,
            W: float, H: float) -> np.ndarray:
    """Move each edge by a normal draw of ``jitter`` x the box's width or
    height, then clip to the image (keeping at least one pixel)."""
    w, h = box[2] - box[0], box[3] - box[1]
    out = box + rng.normal(0, jitter, 4) * np.array([w, h, w, h])
    out[[0, 2]] = np.clip(out[[0, 2]], 0, W - 1)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, H - 1)  # x2 <= W - 1: +1 pixel
    out[2] = max(out[2], out[0] + 1)
    out[3] = max(out[3], out[1] + 1)
    return out


def detections_from_ground_truth(data_root: str,
                                 out: str,
                                 *,
                                 mode: str = 'sgdet',
                                 jitter: float = 0.05,
                                 drop: float = 0.1,
                                 false_positives: float = 0.5,
                                 seed: int = 0,
                                 classes: Optional[Sequence[str]] = None
                                 ) -> Dict[str, int]:
    """Write a detections file for every frame of Action Genome's pickles.

    Each frame's person box (row 0) and visible objects become detections
    (labels: the ground-truth class names, scores uniform in [0.5, 1]),
    each dropped with probability ``drop`` and its edges jittered
    (:func:`_jitter`); then a Poisson(``false_positives``) number of false
    positives per frame: a random class among the objects', a random box
    in the image, a score uniform in [0.05, 0.6]. Frames whose person box
    array is empty still get their objects. The ground truth is read, never
    changed.

    Args:
        data_root (str): The Action Genome root (``annotations/``).
        out (str): Output file, ``.npz`` or ``.json``.
        mode (str): ``'sgdet'``/``'sgcls'`` read the ``_filtersmall``
            object file, ``'predcls'`` the full one.
        jitter, drop, false_positives: See above.
        seed (int): Seed of every random draw.
        classes (Sequence[str], optional): Class names of false positives
            (default: the object classes seen in the file).

    Returns:
        dict: counts ``frames``, ``true`` (detections of a ground-truth box),
        ``dropped`` and ``false_positives``.
    """
    for name, v in (('jitter', jitter), ('drop', drop),
                    ('false_positives', false_positives)):
        if v < 0 or (name == 'drop' and v > 1):
            raise ValueError(f'{name}={v} must be >= 0' +
                             (' and <= 1' if name == 'drop' else ''))
    ann = osp.join(data_root, 'annotations')
    persons = restricted_load(osp.join(ann, 'person_bbox.pkl'))
    obj_file = 'object_bbox_and_relationship' + (
        '' if mode == 'predcls' else '_filtersmall') + '.pkl'
    objects = restricted_load(osp.join(ann, obj_file))
    if classes is None:
        classes = sorted({str(o['class']) for objs in objects.values()
                          for o in objs if o.get('visible')})
    rng = np.random.default_rng(seed)
    counts = dict(frames=0, true=0, dropped=0, false_positives=0)
    frames = {}
    for key, person in persons.items():
        W, H = (float(v) for v in person.get('bbox_size', (0, 0)))
        gt = []
        pbox = np.asarray(person.get('bbox'), np.float32).reshape(-1, 4)
        if len(pbox):
            gt.append((pbox[0].astype(np.float64), 'person'))
        for o in objects.get(key) or ():
            if o.get('visible') and o.get('bbox') is not None:
                x, y, w, h = (float(v) for v in o['bbox'])
                gt.append((np.array([x, y, x + w, y + h]), str(o['class'])))
        boxes, labels, scores = [], [], []
        for box, label in gt:
            if rng.random() < drop:
                counts['dropped'] += 1
                continue
            boxes.append(_jitter(rng, box, jitter, W, H))
            labels.append(label)
            scores.append(rng.uniform(0.5, 1.0))
            counts['true'] += 1
        for _ in range(rng.poisson(false_positives) if classes else 0):
            w, h = rng.uniform(0.1, 0.4) * W, rng.uniform(0.1, 0.4) * H
            x, y = rng.uniform(0, W - w), rng.uniform(0, H - h)
            boxes.append(np.array([x, y, x + w, y + h]))
            labels.append(classes[rng.integers(len(classes))])
            scores.append(rng.uniform(0.05, 0.6))
            counts['false_positives'] += 1
        frames[key] = dict(boxes=np.asarray(boxes).reshape(-1, 4),
                           labels=np.asarray(labels, dtype=str),
                           scores=np.asarray(scores))
        counts['frames'] += 1
    write_detections(out, frames)
    return counts


DEMO_DETECTIONS_VERSION = 1


def ensure_demo_detections(path: str, data_root: str, **kwargs) -> str:
    """Write ``path`` with :func:`detections_from_ground_truth` on
    ``data_root`` unless the same version and arguments are there.

    The file's folder is generated as a whole (``demo_cache``'s lock and
    ``.complete`` record), so it must be a folder of its own. A file at
    ``path`` not written here (no ``.complete`` beside it) is the user's:
    it is used as it is, never replaced.
    """
    from mmengine.logging import print_log

    from .demo_cache import ensure_generated
    folder = osp.dirname(osp.abspath(path))
    if osp.isfile(path) and not osp.exists(osp.join(folder, '.complete')):
        return path
    name = osp.basename(path)
    record = dict(kwargs, data_root=osp.abspath(data_root), name=name)

    def generate(tmp: str) -> None:
        print_log(f'Writing demo detections {path} from the ground truth '
                  f'of {data_root} ({kwargs})', logger='current')
        detections_from_ground_truth(data_root, osp.join(tmp, name),
                                     **kwargs)

    ensure_generated(folder, DEMO_DETECTIONS_VERSION, record, generate,
                     'ensure_demo_detections')
    return path

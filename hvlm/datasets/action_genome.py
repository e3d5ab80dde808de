"""Action Genome (and the demo data written in its format) for scene graphs.

Layout read (the real data set's, unchanged)::

    data_root/annotations/person_bbox.pkl
        {'VID.mp4/000089.png': {'bbox': float32 [N, 4] xyxy (N may be 0),
                                'bbox_size': (W, H), ...}, ...}
    data_root/annotations/object_bbox_and_relationship.pkl
        {'VID.mp4/000089.png': [{'class': 'cup/glass/bottle',
            'bbox': (x, y, w, h) or None, 'visible': bool,
            'attention_relationship': ['looking_at'],
            'spatial_relationship': ['in_front_of'],
            'contacting_relationship': ['holding'],
            'metadata': {'tag': ..., 'set': 'train' | 'test'}}, ...], ...}
    data_root/annotations/object_bbox_and_relationship_filtersmall.pkl
        (the same without boxes whose short edge is < 16 px; SGCLS/SGDET)
    data_root/annotations/frame_list.txt          one frame key a line
        (kept frames it does not list are counted in a warning)
    data_root/annotations/object_classes.txt      36 names, person first
    data_root/annotations/relationship_classes.txt  26 names
    data_root/frames/VID.mp4/000089.png
    data_root/videos/VID.mp4        (with ``frames_from='videos'``: the
        frames are decoded with decord, frame 89 for ``000089.png``)

One item is one video, its kept frames in file order::

    dict(video_id='VID.mp4', frame_names=['VID.mp4/000089.png', ...],
         frame_paths=[...], img_shape=(H, W),
         video_path='.../videos/VID.mp4' and frame_indices=[89, ...]
         (only with ``frames_from='videos'``),
         person_boxes=float32 [T, 4] xyxy (row 0 of each frame's boxes),
         obj_frames=int64 [M] (frame index of each object in 0..T-1),
         obj_boxes=float32 [M, 4] xyxy, obj_labels=int64 [M] (index into
         ``metainfo['classes']``, whose 0 is ``__background__``, 1 person),
         attention=int64 [M] (0..2), spatial=uint8 [M, 6] and
         contacting=uint8 [M, 17] (multi-hot within each group))

and, with a ``detections_file`` (SGDET; format in
:mod:`hvlm.datasets.scene_graph_detections`), the frames' detections:
``det_frames`` int64 [D] (0..T-1), ``det_boxes`` float32 [D, 4] xyxy
(clipped to the image), ``det_labels`` int64 [D] (indices into
``classes``), ``det_scores`` float32 [D] and ``det_features`` float32
[D, C] when the file has features.

Rules, as STTran's loader applies them (it drops silently; here every drop
is counted and logged): a frame with no (or an empty) object list is
dropped (the ``_filtersmall`` file empties some); a frame belongs to the
split of its first object's ``metadata['set']``; a frame without a
visible object is dropped; a frame whose person box array is empty is
dropped; a video left with 2 or fewer frames is dropped. Invisible objects
are never used.

Bad input (``on_bad``): a visible object with no box, a box with no area or
lying wholly outside the ``bbox_size`` image, an unknown class or predicate
name, a frame file that is missing (``check_frames``); in the detections
file, a kept frame it does not list, a detection box with no area or wholly
outside the image, an unknown label. With ``'error'`` the first one raises
:class:`AnnotationError` naming the file and key; with ``'skip'`` the
object (box, names), detection, or frame (missing file, frame missing from
the detections file) is skipped, and counted in the log with the first few
keys named.
"""
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from hvlm.registry import DATASETS, TRANSFORMS
from .bad_entries import BadEntries
from .exceptions import AnnotationError
from .safe_pickle import restricted_load
from .scene_graph_detections import ensure_demo_detections, load_detections

__all__ = [
    'ActionGenomeDataset', 'normalise_object_class', 'normalise_predicate',
    'AG_ATTENTION', 'AG_SPATIAL', 'AG_CONTACTING', 'AG_PREDICATES'
]

# The predicate groups in relationship_classes.txt order (normalised).
AG_ATTENTION = ('looking_at', 'not_looking_at', 'unsure')
AG_SPATIAL = ('above', 'beneath', 'in_front_of', 'behind', 'on_the_side_of',
              'in')
AG_CONTACTING = ('carrying', 'covered_by', 'drinking_from', 'eating',
                 'have_it_on_the_back', 'holding', 'leaning_on', 'lying_on',
                 'not_contacting', 'other_relationship', 'sitting_on',
                 'standing_on', 'touching', 'twisting', 'wearing', 'wiping',
                 'writing_on')
AG_PREDICATES = AG_ATTENTION + AG_SPATIAL + AG_CONTACTING

# The class files spell names without separators; the pickles and the
# reference loader use these forms (STTran renames them by index).
_OBJECT_RENAMES = {
    'closetcabinet': 'closet/cabinet',
    'cupglassbottle': 'cup/glass/bottle',
    'papernotebook': 'paper/notebook',
    'phonecamera': 'phone/camera',
    'sofacouch': 'sofa/couch',
}
_PREDICATE_RENAMES = {p.replace('_', ''): p for p in AG_PREDICATES}


def normalise_object_class(name: str) -> str:
    """``'closetcabinet'`` -> ``'closet/cabinet'``; other names unchanged."""
    name = name.strip()
    return _OBJECT_RENAMES.get(name, name)


def normalise_predicate(name: str) -> str:
    """``'lookingat'`` -> ``'looking_at'``; other names unchanged."""
    name = name.strip()
    return _PREDICATE_RENAMES.get(name, name)


def _read_names(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


@DATASETS.register_module()
class ActionGenomeDataset(BadEntries, BaseDataset):
    """Videos of Action Genome, one item per video (see the module doc).

    Args:
        data_root (str): The Action Genome root (``annotations/``,
            ``frames/``); set it per split with ``--cfg-options``.
        split (str): ``'train'`` or ``'test'`` (``metadata['set']``).
        mode (str): ``'predcls'`` reads ``object_bbox_and_relationship.pkl``;
            ``'sgcls'`` and ``'sgdet'`` the ``_filtersmall`` file.
        datasize (str): ``'large'`` (all) or ``'mini'``: only the first
            ``mini_frames`` keys of ``person_bbox.pkl``, as the reference.
        mini_frames (int): Frames read with ``datasize='mini'``.
        min_frames (int): Videos with fewer kept frames are dropped; 3 drops
            the videos of 2 or fewer frames, as the reference does.
        on_bad (str): ``'error'`` or ``'skip'`` (see the module doc).
        check_frames (bool): Check every kept frame file (or video file,
            with ``frames_from='videos'``) exists.
        frames_from (str): ``'frames'``: the PNG files under ``frames/``;
            ``'videos'``: decode them from ``videos/VID.mp4`` (decord, in
            :class:`LoadSceneGraphFrames`), the frame number of each key
            (``000089.png``) being its index in the video.
        vocab_root (str, optional): The root whose class files
            (``annotations/object_classes.txt``, ``relationship_classes.txt``)
            define the label indices; defaults to ``data_root``. The runner
            sets it to the training root for validation and test.
        demo (dict, optional): ``ensure_scene_graph_demo`` arguments with
            ``root``; when ``data_root`` is that root the demo data is
            generated on first use.
        detections_file (str, optional): Per-frame detections (``.npz`` or
            ``.json``, see :mod:`hvlm.datasets.scene_graph_detections`);
            needed by ``mode='sgdet'``.
        detections_demo (dict, optional): ``detections_from_ground_truth``
            arguments (``jitter``, ``drop``, ``false_positives``, ``seed``):
            when ``data_root`` is the ``demo`` root, ``detections_file`` is
            written from its ground truth on first use (in a folder of its
            own).
        pipeline (Sequence): Transforms (``LoadSceneGraphFrames``, ...).
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.
    """

    MODES = ('predcls', 'sgcls', 'sgdet')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 mode: str = 'predcls',
                 datasize: str = 'large',
                 mini_frames: int = 80000,
                 min_frames: int = 3,
                 on_bad: str = 'error',
                 check_frames: bool = True,
                 frames_from: str = 'frames',
                 demo: Optional[dict] = None,
                 vocab_root: Optional[str] = None,
                 detections_file: Optional[str] = None,
                 detections_demo: Optional[dict] = None,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if mode not in self.MODES:
            raise ValueError(f'ActionGenomeDataset: mode={mode!r} must be one '
                             f'of {self.MODES}')
        if split not in ('train', 'test'):
            raise ValueError(f'ActionGenomeDataset: split={split!r} must be '
                             "'train' or 'test' (metadata['set'])")
        if datasize not in ('large', 'mini'):
            raise ValueError(f'ActionGenomeDataset: datasize={datasize!r} '
                             "must be 'large' or 'mini'")
        if on_bad not in ('error', 'skip'):
            raise ValueError(f'ActionGenomeDataset: on_bad={on_bad!r} must '
                             "be 'error' or 'skip'")
        if frames_from not in ('frames', 'videos'):
            raise ValueError(f'ActionGenomeDataset: frames_from='
                             f"{frames_from!r} must be 'frames' or 'videos'")
        self.frames_from = frames_from
        self.split = split
        self.mode = mode
        self.datasize = datasize
        self.mini_frames = int(mini_frames)
        self.min_frames = int(min_frames)
        self.on_bad = on_bad
        self.check_frames = check_frames
        if mode == 'sgdet' and not detections_file:
            raise ValueError('ActionGenomeDataset: mode=\'sgdet\' needs '
                             'detections_file (per-frame detections, see '
                             'hvlm.datasets.scene_graph_detections)')
        self.detections_file = detections_file
        self._reset_drops()
        # hvlm's runner points val/test vocab_root at the training root
        self.vocab_root = vocab_root
        if demo is not None:
            from .scene_graph_demo import ensure_scene_graph_demo
            kwargs_demo = dict(demo)
            root = osp.abspath(kwargs_demo.pop('root'))
            if osp.abspath(data_root) == root:
                ensure_scene_graph_demo(root, **kwargs_demo)
                if detections_demo is not None and detections_file:
                    ensure_demo_detections(
                        detections_file, root,
                        **dict(detections_demo, mode=mode))
        super().__init__(
            ann_file='',
            data_root=data_root,
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    def _class_files(self) -> Dict[str, tuple]:
        ann = osp.join(self.vocab_root or self.data_root, 'annotations')
        obj_path = osp.join(ann, 'object_classes.txt')
        rel_path = osp.join(ann, 'relationship_classes.txt')
        for path in (obj_path, rel_path):
            if not osp.isfile(path):
                raise FileNotFoundError(
                    f'ActionGenomeDataset: {path} does not exist; data_root '
                    'must be the Action Genome root holding annotations/')
        classes = ('__background__', ) + tuple(
            normalise_object_class(n) for n in _read_names(obj_path))
        predicates = tuple(
            normalise_predicate(n) for n in _read_names(rel_path))
        if predicates != AG_PREDICATES:
            raise AnnotationError(
                f'{rel_path}: expected the 26 Action Genome predicates in '
                f'order {list(AG_PREDICATES)}, found {list(predicates)}')
        if 'person' not in classes:
            raise AnnotationError(f'{obj_path}: has no "person" class')
        return dict(classes=classes, predicates=predicates)

    def load_data_list(self) -> List[dict]:
        self._metainfo.update(self._class_files())
        classes = self._metainfo['classes']
        class_index = {c: i for i, c in enumerate(classes)}
        ann = osp.join(self.data_root, 'annotations')
        person_path = osp.join(ann, 'person_bbox.pkl')
        obj_name = 'object_bbox_and_relationship' + (
            '_filtersmall' if self.mode != 'predcls' else '') + '.pkl'
        obj_path = osp.join(ann, obj_name)
        for path in (person_path, obj_path):
            if not osp.isfile(path):
                raise FileNotFoundError(f'ActionGenomeDataset: {path} does '
                                        'not exist')
        persons = restricted_load(person_path)
        objects = restricted_load(obj_path)
        for path, data in ((person_path, persons), (obj_path, objects)):
            if not isinstance(data, dict):
                raise AnnotationError(
                    f'{path}: expected a dict keyed "VID.mp4/NNNNNN.png", '
                    f'found {type(data).__name__}')
        self._reset_drops()
        list_path = osp.join(ann, 'frame_list.txt')
        listed = set(_read_names(list_path)) if osp.isfile(list_path) \
            else None
        self._detections = load_detections(self.detections_file) \
            if self.detections_file else None
        keys = list(persons)
        if self.datasize == 'mini':
            keys = keys[:self.mini_frames]

        videos: 'OrderedDict[str, list]' = OrderedDict()
        for key in keys:
            objs = objects.get(key)
            if not objs:  # no entry, or every object filtered as small
                self.drop_counts['frame_no_object_entry'] += 1
                continue
            meta = objs[0].get('metadata') or {}
            if meta.get('set') != self.split:
                continue
            if not any(o.get('visible') for o in objs):
                self.drop_counts['frame_no_visible_object'] += 1
                continue
            pbox = np.asarray(persons[key].get('bbox'), dtype=np.float32)
            if pbox.size == 0:
                self.drop_counts['frame_no_person_box'] += 1
                continue
            videos.setdefault(key.split('/')[0], []).append(key)

        data_list = []
        for vid, frame_keys in videos.items():
            item = self._parse_video(vid, frame_keys, persons, objects,
                                     obj_path, class_index)
            if item is None:
                continue
            if len(item['frame_names']) < self.min_frames:
                self.drop_counts['video_too_short'] += 1
                continue
            data_list.append(item)
        if listed is not None:
            unlisted = [k for item in data_list for k in item['frame_names']
                        if k not in listed]
            if unlisted:
                print_log(f'ActionGenomeDataset: {len(unlisted)} kept frames '
                          f'are not in {list_path} (kept; e.g. '
                          f'{unlisted[:3]})', logger='current', level=30)
        self._detections = None  # not kept once parsed
        self._log_drops(f'{len(data_list)} videos', self.data_root)
        if not data_list:
            raise AnnotationError(
                f'ActionGenomeDataset: no video of split {self.split!r} left '
                f'in {self.data_root} ({self.mode}); dropped: '
                f'{dict(self.drop_counts)}')
        return data_list

    def _parse_video(self, vid, frame_keys, persons, objects, obj_path,
                     class_index) -> Optional[dict]:
        names, paths, pboxes, dets = [], [], [], []
        obj_frames, boxes, labels, att, spa, con = [], [], [], [], [], []
        img_shape = None
        video_path = osp.join(self.data_root, 'videos', vid)
        from_videos = self.frames_from == 'videos'
        if from_videos and self.check_frames and not osp.isfile(video_path):
            for _ in frame_keys:
                self._bad('missing_video', video_path, 'video file is '
                          'missing')
            return None
        indices = []
        for key in frame_keys:
            path = osp.join(self.data_root, 'frames', key)
            if from_videos:
                stem = osp.splitext(osp.basename(key))[0]
                if not stem.isdigit():
                    self._bad('bad_frame_name', f'{video_path} {key!r}',
                              'frame name is not a frame number')
                    continue
            elif self.check_frames and not osp.isfile(path):
                self._bad('missing_frame', path, 'frame file is missing')
                continue
            person = persons[key]
            W, H = (float(v) for v in person.get('bbox_size', (0, 0)))
            frame_objs = []
            for j, o in enumerate(objects[key]):
                if not o.get('visible'):
                    continue
                parsed = self._parse_object(o, f'{obj_path}[{key!r}][{j}]',
                                            class_index, W, H)
                if parsed is not None:
                    frame_objs.append(parsed)
            if not frame_objs:  # every visible object was bad and skipped
                self.drop_counts['frame_no_valid_object'] += 1
                continue
            if self._detections is not None:
                det = self._parse_detections(key, class_index, W, H)
                if det is None:
                    continue
                dets.append(det)
            t = len(names)
            names.append(key)
            paths.append(path)
            if from_videos:
                indices.append(int(stem))
            pboxes.append(np.asarray(person['bbox'], np.float32)[0])
            img_shape = (int(H), int(W))
            for box, label, a, s, c in frame_objs:
                obj_frames.append(t)
                boxes.append(box)
                labels.append(label)
                att.append(a)
                spa.append(s)
                con.append(c)
        if not names:
            self.drop_counts['video_no_frame'] += 1
            return None
        item = dict(
            video_id=vid,
            frame_names=names,
            frame_paths=paths,
            img_shape=img_shape,
            person_boxes=np.stack(pboxes).astype(np.float32),
            obj_frames=np.asarray(obj_frames, np.int64),
            obj_boxes=np.stack(boxes).astype(np.float32),
            obj_labels=np.asarray(labels, np.int64),
            attention=np.asarray(att, np.int64),
            spatial=np.stack(spa).astype(np.uint8),
            contacting=np.stack(con).astype(np.uint8))
        if from_videos:
            item.update(video_path=video_path, frame_indices=indices)
        if dets:
            item.update(
                det_frames=np.concatenate(
                    [np.full(len(d[0]), t, np.int64)
                     for t, d in enumerate(dets)]),
                det_boxes=np.concatenate([d[0] for d in dets]).reshape(
                    -1, 4).astype(np.float32),
                det_labels=np.concatenate([d[1] for d in dets]).astype(
                    np.int64),
                det_scores=np.concatenate([d[2] for d in dets]).astype(
                    np.float32))
            if dets[0][3] is not None:
                item['det_features'] = np.concatenate(
                    [d[3] for d in dets]).astype(np.float32)
        return item

    def _parse_detections(self, key: str, class_index: dict, W: float,
                          H: float) -> Optional[tuple]:
        """The frame's detections ``(boxes, labels, scores, features)``
        checked and clipped to the image; None when the file does not list
        the frame (skipped) - bad detections are dropped one by one."""
        path = self.detections_file
        det = self._detections.get(key)
        if det is None:
            self._bad('detections_missing_frame', f'{path}[{key!r}]',
                      'frame is kept but the detections file does not list '
                      'it')
            return None
        keep, labels = [], []
        for j, (box, label) in enumerate(zip(det['boxes'], det['labels'])):
            where = f'{path}[{key!r}][{j}]'
            if isinstance(label, (str, np.str_)):
                label = str(label)
                index = class_index.get(normalise_object_class(label))
            else:
                index = int(label) if 0 < int(label) < len(class_index) \
                    else None
            if index is None or index == 0:
                self._bad('detection_unknown_label', where,
                          f'unknown detection label {label!r}')
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            if not (np.isfinite(box).all() and x2 > x1 and y2 > y1) or (
                    W > 0 and H > 0 and (x1 >= W or y1 >= H or x2 <= 0
                                         or y2 <= 0)):
                self._bad('detection_bad_box', where,
                          f'box (x1, y1, x2, y2)={tuple(box.tolist())} has '
                          f'no area or lies outside the {W:g}x{H:g} image')
                continue
            keep.append(j)
            labels.append(index)
        boxes = det['boxes'][keep].reshape(-1, 4).copy()
        if W > 0 and H > 0:  # partly outside: clipped to the image
            boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, W - 1)
            boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, H - 1)
        feats = det['features'][keep] if 'features' in det else None
        return (boxes, np.asarray(labels, np.int64), det['scores'][keep],
                feats)

    def _parse_object(self, o: dict, where: str, class_index: dict, W: float,
                      H: float) -> Optional[tuple]:
        name = normalise_object_class(str(o.get('class')))
        if name not in class_index or name in ('__background__', 'person'):
            self._bad('unknown_class', where,
                      f'unknown object class {o.get("class")!r}')
            return None
        bbox = o.get('bbox')
        if bbox is None:
            self._bad('visible_without_box', where,
                      'object is visible but has no bbox')
            return None
        x, y, w, h = (float(v) for v in bbox)
        box = np.array([x, y, x + w, y + h], np.float32)  # xywh -> xyxy
        if not (w > 0 and h > 0) or (W > 0 and H > 0 and (
                box[0] >= W or box[1] >= H or box[2] <= 0 or box[3] <= 0)):
            self._bad('bad_box', where,
                      f'box (x, y, w, h)={tuple(bbox)} has no area or lies '
                      f'outside the {W:g}x{H:g} image')
            return None
        groups = []
        for field, names in (('attention_relationship', AG_ATTENTION),
                             ('spatial_relationship', AG_SPATIAL),
                             ('contacting_relationship', AG_CONTACTING)):
            found = [normalise_predicate(str(p)) for p in o.get(field) or ()]
            unknown = [p for p in found if p not in names]
            if unknown:
                self._bad('unknown_predicate', f'{where}[{field!r}]',
                          f'unknown predicates {unknown}; expected among '
                          f'{list(names)}')
                return None
            groups.append([names.index(p) for p in found])
        if len(groups[0]) != 1:
            self._bad('attention_not_single', f"{where}['attention_"
                      "relationship']", f'expected one attention predicate, '
                      f'found {len(groups[0])}')
            return None
        spatial = np.zeros(len(AG_SPATIAL), np.uint8)
        spatial[groups[1]] = 1
        contacting = np.zeros(len(AG_CONTACTING), np.uint8)
        contacting[groups[2]] = 1
        return box, class_index[name], groups[0][0], spatial, contacting

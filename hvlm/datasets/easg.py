"""EASG (Ego4D action scene graphs, Rodin et al., CVPR 2024) as scene-graph
videos in the form :class:`ActionGenomeDataset` gives, so that the same
models, metric and checkpoints apply (fine-tuning from Action Genome).

Layout read (the release's, as its STTran baseline reads it)::

    data_root/EASG_unict_master_final_upd.json   (``ann_file``)
        {clip_uid: {'split': 'train' | 'val', 'W': 1920, 'H': 1080,
                    'graphs': [{'graph_uid': '...',
                                'triplets': [['CW', 'verb', 'cut'],
                                             ['cut', 'dobj', 'onion'],
                                             ['cut', 'with', 'knife:1'],
                                             ...],
                                'groundings': {'pre': {'onion': {
                                    'left': x, 'top': y, 'width': w,
                                    'height': h}, ...},
                                    'pnr': {...}, 'post': {...}}}, ...]},
         ...}
    data_root/frames/<graph_uid>/<clip_uid>_<pre|pnr|post>.jpg

A graph is one action of the camera wearer (``CW``): its verb (the
``['CW', 'verb', V]`` triplet) and the objects the verb reaches through
relations (``[V, relation, noun]``; a ``:k`` suffix numbers instances and is
dropped, as the reference does), grounded by boxes (x, y, w, h) in up to
three frames: before the action (``pre``), at its point of no return
(``pnr``) and after it (``post``).

One item is one clip (its graphs' frames in file order; a clip of more than
``max_frames`` frames is cut at graph boundaries into items
``clip_uid#0``, ``clip_uid#1``, ...), in :class:`ActionGenomeDataset`'s
item form with these choices:

- the subject of every pair is the camera wearer, class 1
  (``'camera_wearer'``, where Action Genome has ``person``), its box the
  whole frame ``(0, 0, W - 1, H - 1)`` (it is behind the camera);
- the objects of a frame are the graph's grounded nouns that carry a
  relation; ``obj_labels`` index ``metainfo['classes']`` =
  ``('__background__', 'camera_wearer', *objects)``;
- the predicate groups: ``attention`` holds the graph's verb (single-label,
  ``[M]`` verb index), ``spatial`` is empty (``[M, 0]``), ``contacting``
  holds the relations (multi-hot ``[M, E]``); ``metainfo['predicates']``
  is ``verbs + relations`` and ``metainfo['predicate_groups']`` is
  ``(V, 0, E)``, which :class:`SceneGraphRecall` reads. A model's relation
  head takes ``num_attention=V, num_spatial=0, num_contacting=E``.

The vocabularies: with ``class_files`` (one name a line; the release ships
``objects.txt``, ``verbs.txt``, ``relationships.txt`` beside its converted
annotations) they fix the indices and a name outside them is bad input;
without, they are the sorted names found in the whole annotation file (all
splits, so train and val agree), logged.

Rules (the reference drops silently; here each is counted in the log): a
grounding of a noun with no relation in its graph is dropped
(``grounding_without_relation``); a frame with no kept object is dropped;
an item with fewer than ``min_frames`` frames is dropped. Bad input
(``on_bad``, as :class:`ActionGenomeDataset`): a clip or graph missing a
key, a triplet that is not three strings, a graph without exactly one verb,
a name outside ``class_files``, a box with no area or wholly outside the
``W`` x ``H`` image, a missing frame file: ``'error'`` raises an
:class:`AnnotationError` naming the file and entry; ``'skip'`` skips the
entry (box, graph or frame) and counts it.
"""
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from hvlm.registry import DATASETS, TRANSFORMS
from .bad_entries import BadEntries
from .exceptions import AnnotationError

__all__ = ['EASGDataset', 'EASG_MOMENTS', 'CAMERA_WEARER']

EASG_MOMENTS = ('pre', 'pnr', 'post')
CAMERA_WEARER = 'camera_wearer'
_BOX_KEYS = ('left', 'top', 'width', 'height')


def _noun(name: str) -> str:
    """``'knife:1'`` -> ``'knife'`` (the instance number is dropped)."""
    return name.split(':')[0].strip()


def _read_names(path: str) -> List[str]:
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


@DATASETS.register_module()
class EASGDataset(BadEntries, BaseDataset):
    """EASG clips as scene-graph videos (see the module doc).

    Args:
        data_root (str): The EASG root (``ann_file``, ``frames/``).
        split (str): ``'train'`` or ``'val'`` (each clip's ``split``).
        ann_file (str): The annotation JSON, relative to ``data_root``.
        mode (str): ``'predcls'`` or ``'sgcls'`` (the reference's
            ``edgecls`` and ``sgcls``); the data is the same.
        class_files (dict, optional): ``objects``, ``verbs``,
            ``relations``: files (relative to ``data_root``) fixing the
            vocabularies; any left out is read from the annotations.
        frame_template (str): A frame's path under ``frames/``.
        max_frames (int): Frames per item at most (the reference: 100).
        min_frames (int): Items with fewer frames are dropped.
        on_bad (str): ``'error'`` or ``'skip'``.
        check_frames (bool): Check each kept frame file exists.
        vocab_root (str, optional): The root whose ``ann_file`` (and
            ``class_files``) define the vocabularies; defaults to
            ``data_root``. The runner sets it to the training root for
            validation and test, so the indices mean the same in each.
        pipeline (Sequence): Transforms (``LoadSceneGraphFrames``, ...).
    """

    MODES = ('predcls', 'sgcls')

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 ann_file: str = 'EASG_unict_master_final_upd.json',
                 mode: str = 'predcls',
                 class_files: Optional[Dict[str, str]] = None,
                 frame_template: str = '{graph_uid}/{clip_uid}_{moment}.jpg',
                 max_frames: int = 100,
                 min_frames: int = 1,
                 on_bad: str = 'error',
                 check_frames: bool = True,
                 vocab_root: Optional[str] = None,
                 pipeline: Sequence = (),
                 test_mode: bool = False,
                 **kwargs) -> None:
        if mode not in self.MODES:
            raise ValueError(f'EASGDataset: mode={mode!r} must be one of '
                             f'{self.MODES} (no detections file for EASG)')
        if split not in ('train', 'val'):
            raise ValueError(f"EASGDataset: split={split!r} must be 'train' "
                             "or 'val' (each clip's 'split')")
        if on_bad not in ('error', 'skip'):
            raise ValueError(f'EASGDataset: on_bad={on_bad!r} must be '
                             "'error' or 'skip'")
        unknown = set(class_files or {}) - {'objects', 'verbs', 'relations'}
        if unknown:
            raise ValueError(f'EASGDataset: class_files has unknown keys '
                             f"{sorted(unknown)}; expected 'objects', "
                             "'verbs', 'relations'")
        if max_frames < 3:
            raise ValueError(f'EASGDataset: max_frames={max_frames} must be '
                             '>= 3 (one graph has up to 3 frames)')
        self.split = split
        self.mode = mode
        self.class_files = dict(class_files or {})
        self.frame_template = frame_template
        self.max_frames = int(max_frames)
        self.min_frames = int(min_frames)
        self.on_bad = on_bad
        self.check_frames = check_frames
        self.vocab_root = vocab_root
        self._reset_drops()
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            pipeline=[
                TRANSFORMS.build(t) if isinstance(t, dict) else t
                for t in pipeline
            ],
            test_mode=test_mode,
            **kwargs)

    # ------------------------------------------------------------------
    def _read_annotations(self, path: str) -> dict:
        if not osp.isfile(path):
            raise FileNotFoundError(f'EASGDataset: {path} does not exist; '
                                    'data_root must hold the EASG JSON')
        try:
            with open(path) as f:
                clips = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise AnnotationError(f'{path}: not JSON ({err})') from err
        if not isinstance(clips, dict):
            raise AnnotationError(f'{path}: expected a dict keyed by clip '
                                  f'uid, found {type(clips).__name__}')
        for clip_uid, clip in clips.items():
            missing = [k for k in ('split', 'W', 'H', 'graphs')
                       if not isinstance(clip, dict) or k not in clip]
            if missing:
                raise AnnotationError(f'{path}[{clip_uid!r}]: missing keys '
                                      f'{missing}')
        return clips

    def _graph_names(self, graph: dict, where: str
                     ) -> Optional[Tuple[str, Dict[str, List[str]]]]:
        """A graph's verb and ``{noun: [relations]}``; None if bad."""
        triplets = graph.get('triplets')
        if not isinstance(triplets, list):
            self._bad('bad_graph', where, "graph has no 'triplets' list")
            return None
        verbs, relations = [], {}
        for j, t in enumerate(triplets):
            if not (isinstance(t, (list, tuple)) and len(t) == 3
                    and all(isinstance(v, str) for v in t)):
                self._bad('bad_triplet', f"{where}['triplets'][{j}]",
                          f'expected [node, edge, node] strings, found '
                          f'{t!r}')
                return None
            n1, edge, n2 = t
            if n1 == 'CW':
                verbs.append(n2.strip())
            else:
                rels = relations.setdefault(_noun(n2), [])
                if edge.strip() not in rels:
                    rels.append(edge.strip())
        if len(verbs) != 1:
            self._bad('graph_verb', f"{where}['triplets']",
                      f"expected one ['CW', 'verb', V] triplet, found "
                      f'{len(verbs)}')
            return None
        return verbs[0], relations

    def _vocabularies(self, clips: dict) -> Dict[str, Tuple[str, ...]]:
        root, source = self.data_root, self.ann_file
        if self.vocab_root and osp.abspath(self.vocab_root) != osp.abspath(
                self.data_root):
            root = self.vocab_root
            source = osp.join(root, osp.relpath(self.ann_file,
                                                self.data_root))
            clips = self._read_annotations(source)
        found = dict(objects=set(), verbs=set(), relations=set())
        for clip_uid, clip in clips.items():
            for graph in clip['graphs'] or ():
                if not isinstance(graph, dict):
                    continue
                for t in graph.get('triplets') or ():
                    if isinstance(t, (list, tuple)) and len(t) == 3 and \
                            all(isinstance(v, str) for v in t):
                        if t[0] == 'CW':
                            found['verbs'].add(t[2].strip())
                        else:
                            found['relations'].add(t[1].strip())
                            found['objects'].add(_noun(t[2]))
        vocab = {}
        for key in ('objects', 'verbs', 'relations'):
            if key in self.class_files:
                path = osp.join(root, self.class_files[key])
                if not osp.isfile(path):
                    raise FileNotFoundError(
                        f'EASGDataset: class_files[{key!r}]={path} does not '
                        'exist')
                vocab[key] = tuple(_read_names(path))
            else:
                vocab[key] = tuple(sorted(found[key]))
        derived = [k for k in vocab if k not in self.class_files]
        if derived:
            print_log(
                f'EASGDataset: {", ".join(derived)} read from {source}'
                ' (all splits, sorted): ' + ', '.join(
                    f'{len(vocab[k])} {k}' for k in derived),
                logger='current')
        return vocab

    def load_data_list(self) -> List[dict]:
        clips = self._read_annotations(self.ann_file)
        self._reset_drops()
        vocab = self._vocabularies(clips)
        classes = ('__background__', CAMERA_WEARER) + vocab['objects']
        self._metainfo.update(
            classes=classes,
            verbs=vocab['verbs'],
            relations=vocab['relations'],
            predicates=vocab['verbs'] + vocab['relations'],
            predicate_groups=(len(vocab['verbs']), 0,
                              len(vocab['relations'])))
        index = dict(objects={c: i for i, c in enumerate(classes)},
                     verbs={v: i for i, v in enumerate(vocab['verbs'])},
                     relations={r: i for i, r in
                                enumerate(vocab['relations'])})
        data_list = []
        for clip_uid, clip in clips.items():
            if clip['split'] != self.split:
                continue
            frames = []
            for g, graph in enumerate(clip['graphs']):
                where = f'{self.ann_file}[{clip_uid!r}][\'graphs\'][{g}]'
                frames.append(self._parse_graph(clip_uid, clip, graph,
                                                where, index))
            data_list += self._items(clip_uid, clip, frames)
        self._log_drops(f'{len(data_list)} clips', self.ann_file)
        if not data_list:
            raise AnnotationError(
                f'EASGDataset: no clip of split {self.split!r} left in '
                f'{self.ann_file}; dropped: {dict(self.drop_counts)}')
        return data_list

    def _parse_graph(self, clip_uid: str, clip: dict, graph, where: str,
                     index: dict) -> List[dict]:
        """The kept frames of one graph (each a dict of its objects)."""
        if not isinstance(graph, dict) or 'graph_uid' not in graph:
            self._bad('bad_graph', where, "graph has no 'graph_uid'")
            return []
        names = self._graph_names(graph, where)
        if names is None:
            return []
        verb, relations = names
        if verb not in index['verbs']:
            self._bad('unknown_verb', f"{where}['triplets']",
                      f'verb {verb!r} is not in the verb classes')
            return []
        rel_idx = {}
        for noun, rels in relations.items():
            unknown = [r for r in rels if r not in index['relations']] + \
                ([noun] if noun not in index['objects'] else [])
            if unknown:
                self._bad('unknown_name', f"{where}['triplets']",
                          f'{unknown} not in the class files')
                return []
            rel_idx[noun] = [index['relations'][r] for r in rels]
        W, H = float(clip['W']), float(clip['H'])
        groundings = graph.get('groundings') or {}
        frames = []
        for moment in EASG_MOMENTS:
            objs = []
            for noun_key, box in (groundings.get(moment) or {}).items():
                noun = _noun(noun_key)
                at = f"{where}['groundings'][{moment!r}][{noun_key!r}]"
                if noun not in rel_idx:
                    self.drop_counts['grounding_without_relation'] += 1
                    continue
                xyxy = self._parse_box(box, at, W, H)
                if xyxy is None:
                    continue
                objs.append((xyxy, index['objects'][noun], rel_idx[noun]))
            if not objs:
                continue
            name = self.frame_template.format(
                graph_uid=graph['graph_uid'], clip_uid=clip_uid,
                moment=moment)
            path = osp.join(self.data_root, 'frames', name)
            if self.check_frames and not osp.isfile(path):
                self._bad('missing_frame', path, 'frame file is missing')
                continue
            frames.append(dict(name=name, path=path,
                               verb=index['verbs'][verb], objects=objs))
        return frames

    def _parse_box(self, box, where: str, W: float,
                   H: float) -> Optional[np.ndarray]:
        if not isinstance(box, dict) or any(k not in box for k in _BOX_KEYS):
            self._bad('bad_box', where, f'expected a box dict with keys '
                      f'{list(_BOX_KEYS)}, found {box!r}')
            return None
        x, y, w, h = (float(box[k]) for k in _BOX_KEYS)
        xyxy = np.array([x, y, x + w, y + h], np.float32)
        if not (np.isfinite(xyxy).all() and w > 0 and h > 0) or (
                xyxy[0] >= W or xyxy[1] >= H or xyxy[2] <= 0
                or xyxy[3] <= 0):
            self._bad('bad_box', where, f'box (left, top, width, height)='
                      f'{(x, y, w, h)} has no area or lies outside the '
                      f'{W:g}x{H:g} image')
            return None
        return xyxy

    def _items(self, clip_uid: str, clip: dict,
               graphs: List[List[dict]]) -> List[dict]:
        """Cut a clip's frames at graph boundaries into items."""
        chunks, current = [], []
        for frames in graphs:
            if current and len(current) + len(frames) > self.max_frames:
                chunks.append(current)
                current = []
            current = current + frames
        if current:
            chunks.append(current)
        W, H = int(clip['W']), int(clip['H'])
        E = len(self._metainfo['relations'])
        items = []
        for k, frames in enumerate(chunks):
            if len(frames) < self.min_frames:
                self.drop_counts['video_too_short'] += 1
                continue
            obj_frames, boxes, labels, verbs, rels = [], [], [], [], []
            for t, f in enumerate(frames):
                for box, label, rel in f['objects']:
                    obj_frames.append(t)
                    boxes.append(box)
                    labels.append(label)
                    verbs.append(f['verb'])
                    hot = np.zeros(E, np.uint8)
                    hot[rel] = 1
                    rels.append(hot)
            M = len(labels)
            items.append(dict(
                video_id=clip_uid if len(chunks) == 1 else f'{clip_uid}#{k}',
                frame_names=[f['name'] for f in frames],
                frame_paths=[f['path'] for f in frames],
                img_shape=(H, W),
                person_boxes=np.tile(
                    np.array([[0, 0, W - 1, H - 1]], np.float32),
                    (len(frames), 1)),
                obj_frames=np.asarray(obj_frames, np.int64),
                obj_boxes=np.stack(boxes).astype(np.float32),
                obj_labels=np.asarray(labels, np.int64),
                attention=np.asarray(verbs, np.int64),
                spatial=np.zeros((M, 0), np.uint8),
                contacting=np.stack(rels)))
        return items

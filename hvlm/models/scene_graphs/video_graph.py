"""The nodes and (person, object) pairs a scene-graph model sees, per mode.

One video's graph, in the original pixels of its frames::

    boxes [N, 4] xyxy, frames [N] (0..T-1), labels [N] (class indices;
    targets of the object classifier in SGDET training, 0 = background),
    scores [N], is_person [N] bool, features [N, C] or None (a detector's),
    pairs [P, 2] (person node, object node), and in training the pair
    targets attention [P], spatial [P, 6], contacting [P, 17].

- PredCLS / SGCLS: the ground truth: each frame's person box, then the
  objects; one pair per object with its frame's person.
- SGDET training, as STTran's ``assign_relations``: per frame the
  detections are matched to the ground-truth boxes (person first, then the
  objects in order) by IoU (+1 pixel convention) above ``iou_threshold``;
  each ground-truth box takes its best detection, or the next best when
  another ground-truth box took that one; a ground-truth box that no
  detection overlaps enough is *supplied* as an extra node (its ground-truth
  box and class). Every detection is a node whose class target is the
  class of the ground-truth box it overlaps most above the threshold (its
  matched box's class when matched), else background; the pairs are (the
  matched or supplied person, each matched or supplied object) with the
  object's ground-truth predicates. One difference, deliberate: the
  reference takes the next-best detection even below the threshold (down
  to IoU 0); here a taken best detection falls back only to another above
  the threshold, else the box is supplied.
- SGDET test: no ground truth is read. Per frame the person is the
  person-labelled detection of highest score (one person per frame, as the
  reference); every detection not labelled person is an object paired
  with it. A frame without a person detection has no pair.
"""
from typing import Dict, Tuple

import numpy as np
import torch

from hvlm.structures.boxes import box_iou_plus1

__all__ = ['assign_detections', 'video_graph']

PERSON = 1


def assign_detections(det_boxes: np.ndarray, gt_boxes: np.ndarray,
                      gt_labels: np.ndarray, iou_threshold: float = 0.5
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Match one frame's detections to its ground truth (module doc).

    Args:
        det_boxes: ``[D, 4]`` detections.
        gt_boxes: ``[G, 4]`` the person first, then the objects.
        gt_labels: ``[G]`` their classes.

    Returns:
        ``(matched [G], det_labels [D])``: the detection matched to each
        ground-truth box (-1: none, the box is supplied) and each
        detection's class target (0: background).
    """
    D, G = len(det_boxes), len(gt_boxes)
    matched = np.full(G, -1, np.int64)
    det_labels = np.zeros(D, np.int64)
    if D == 0 or G == 0:
        return matched, det_labels
    iou = box_iou_plus1(det_boxes, gt_boxes)  # [D, G]
    over = iou.max(1) > iou_threshold
    det_labels[over] = np.asarray(gt_labels)[iou.argmax(1)[over]]
    taken = np.zeros(D, bool)
    for m in range(G):
        order = np.argsort(-iou[:, m], kind='stable')
        free = [d for d in order
                if iou[d, m] > iou_threshold and not taken[d]]
        if free:
            matched[m] = free[0]
            taken[free[0]] = True
            det_labels[free[0]] = gt_labels[m]
    return matched, det_labels


def _t(x, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def _gt_graph(s: dict) -> Dict[str, torch.Tensor]:
    person = torch.as_tensor(s['person_boxes']).float()  # [T, 4]
    objs = torch.as_tensor(s['obj_boxes']).float()  # [M, 4]
    of = torch.as_tensor(s['obj_frames']).long()  # [M]
    T, M = len(person), len(objs)
    return dict(
        boxes=torch.cat([person, objs]),
        frames=torch.cat([torch.arange(T), of]),
        labels=torch.cat([torch.full((T, ), PERSON),
                          torch.as_tensor(s['obj_labels']).long()]),
        scores=torch.ones(T + M),
        is_person=torch.arange(T + M) < T,
        pairs=torch.stack([of, torch.arange(M) + T], 1),
        attention=torch.as_tensor(s['attention']).long(),
        spatial=torch.as_tensor(s['spatial']).float(),
        contacting=torch.as_tensor(s['contacting']).float())


def _sgdet_train_graph(s: dict, iou_threshold: float
                       ) -> Dict[str, torch.Tensor]:
    g = {k: np.asarray(s[k]) for k in (
        'person_boxes', 'obj_frames', 'obj_boxes', 'obj_labels', 'attention',
        'spatial', 'contacting', 'det_frames', 'det_boxes', 'det_scores')}
    feats = s.get('det_features')
    boxes, frames, labels, scores, is_person, has_feat = [], [], [], [], [], []
    pairs, pair_objs = [], []
    n = 0
    for t in range(len(g['person_boxes'])):
        det = np.nonzero(g['det_frames'] == t)[0]
        obj = np.nonzero(g['obj_frames'] == t)[0]
        gt_boxes = np.concatenate([g['person_boxes'][t:t + 1],
                                   g['obj_boxes'][obj]])
        gt_labels = np.concatenate([[PERSON], g['obj_labels'][obj]])
        matched, det_labels = assign_detections(
            g['det_boxes'][det], gt_boxes, gt_labels, iou_threshold)
        supplied = np.nonzero(matched < 0)[0]
        node = np.where(matched >= 0, n + matched, -1)
        node[supplied] = n + len(det) + np.arange(len(supplied))
        boxes += [g['det_boxes'][det], gt_boxes[supplied]]
        labels += [det_labels, gt_labels[supplied]]
        scores += [g['det_scores'][det], np.ones(len(supplied))]
        flag = np.zeros(len(det) + len(supplied), bool)
        flag[node[0] - n] = True  # the (matched or supplied) person
        is_person.append(flag)
        has_feat += [np.ones(len(det), bool), np.zeros(len(supplied), bool)]
        frames.append(np.full(len(det) + len(supplied), t))
        pairs += [(node[0], node[1 + k]) for k in range(len(obj))]
        pair_objs += list(obj)
        n += len(det) + len(supplied)
    out = dict(
        boxes=_t(np.concatenate(boxes).reshape(-1, 4), torch.float32),
        frames=_t(np.concatenate(frames), torch.long),
        labels=_t(np.concatenate(labels), torch.long),
        scores=_t(np.concatenate(scores), torch.float32),
        is_person=_t(np.concatenate(is_person), torch.bool),
        pairs=_t(np.asarray(pairs, np.int64).reshape(-1, 2), torch.long))
    pair_objs = np.asarray(pair_objs, np.int64)
    out['attention'] = _t(g['attention'][pair_objs], torch.long)
    out['spatial'] = _t(g['spatial'][pair_objs].reshape(-1, 6),
                        torch.float32)
    out['contacting'] = _t(g['contacting'][pair_objs].reshape(-1, 17),
                           torch.float32)
    if feats is not None:
        feats = np.asarray(feats, np.float32)
        full = np.zeros((n, feats.shape[1]), np.float32)
        # detections are stored frame by frame in det order: scatter them
        rows = np.nonzero(np.concatenate(has_feat))[0]
        order = np.concatenate([np.nonzero(g['det_frames'] == t)[0]
                                for t in range(len(g['person_boxes']))])
        full[rows] = feats[order]
        out['features'] = torch.from_numpy(full)
    return out


def _sgdet_test_graph(s: dict) -> Dict[str, torch.Tensor]:
    frames = np.asarray(s['det_frames'])
    labels = np.asarray(s['det_labels'])
    scores = np.asarray(s['det_scores'], np.float32)
    keep, is_person, pairs = [], [], []
    for t in range(len(s['person_boxes'])):
        det = np.nonzero(frames == t)[0]
        persons = det[labels[det] == PERSON]
        if len(persons) == 0:
            continue
        person = persons[np.argmax(scores[persons])]
        objs = det[labels[det] != PERSON]
        p = len(keep)
        keep += [person, *objs]
        is_person += [True] + [False] * len(objs)
        pairs += [(p, p + 1 + k) for k in range(len(objs))]
    keep = np.asarray(keep, np.int64)
    out = dict(
        boxes=torch.as_tensor(s['det_boxes']).float()[keep].reshape(-1, 4),
        frames=_t(frames[keep], torch.long),
        labels=_t(labels[keep], torch.long),
        scores=_t(scores[keep], torch.float32),
        is_person=_t(np.asarray(is_person, bool), torch.bool),
        pairs=_t(np.asarray(pairs, np.int64).reshape(-1, 2), torch.long))
    if s.get('det_features') is not None:
        out['features'] = torch.as_tensor(s['det_features']).float()[keep]
    return out


def video_graph(sample: dict, mode: str, train: bool,
                iou_threshold: float = 0.5) -> Dict[str, torch.Tensor]:
    """The graph of one video (module doc) for ``mode`` (``'predcls'``,
    ``'sgcls'`` or ``'sgdet'``); ``train`` adds the pair targets."""
    if mode != 'sgdet':
        return _gt_graph(sample)
    missing = [k for k in ('det_frames', 'det_boxes', 'det_labels',
                           'det_scores') if k not in sample]
    if missing:
        raise KeyError(f'sgdet needs the detections of video '
                       f'{sample.get("video_id")!r}; the sample has no '
                       f'{missing} (set the data set\'s detections_file)')
    if train:
        return _sgdet_train_graph(sample, iou_threshold)
    return _sgdet_test_graph(sample)

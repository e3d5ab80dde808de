"""Recall@K and mean recall@K of video scene graphs (Action Genome).

The definitions are those of STTran's ``lib/evaluation_recall.py`` (Cong et
al., ICCV 2021; itself after neural-motifs), the field's reference, with
TEMPURA's per-predicate mean recall (Nag et al., CVPR 2023):

- Ground truth of a frame: the person box (index 0, class ``person``) and
  the visible objects; for each object one ``(person, attention, object)``
  triplet, one ``(object, spatial, person)`` triplet per spatial predicate
  (the *reversed* direction) and one ``(person, contacting, object)``
  triplet per contacting predicate.
- Predicted triplets of a frame, from each predicted (person, object) pair
  and its three score vectors (attention probabilities, spatial and
  contacting scores; read, never modified):

  * ``with`` constraint: the best predicate of each group: 3 per pair;
  * ``semi``: the best attention predicate, and every spatial and
    contacting predicate scoring above ``semi_threshold`` (0.9);
  * ``no`` constraint: all 26 predicates of every pair, the 100 with the
    highest ``subject score x object score x predicate score`` kept.

  A triplet's score is ``subject score x object score x predicate score``;
  triplets are ranked by it (ties keep the order pair by pair, attention,
  spatial, contacting; the reference leaves ties to numpy's unstable sort).
- A prediction matches a ground-truth triplet when subject class, predicate
  and object class are equal and both boxes overlap with IoU >= 0.5,
  computed with the ``+1`` pixel convention (a box ``[x1, x2]`` is
  ``x2 - x1 + 1`` wide).
- R@K of a frame: ground-truth triplets matched by any of its top K
  predictions / its ground-truth triplets; R@K is the mean over all frames.
- mR@K: for every predicate, matched / present ground-truth triplets summed
  over the whole set; their mean over the predicates that occur.

Two defects of the reference code are avoided: it softmaxes the attention
scores in place (a second evaluation changes them), and TEMPURA's
per-predicate counters are never reset (mR accumulates over epochs). Here
``results`` are reset by mmengine after each evaluation and nothing else is
kept between evaluations.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.datasets.action_genome import AG_PREDICATES
from hvlm.registry import METRICS
from hvlm.structures.boxes import box_iou_plus1

__all__ = ['SceneGraphRecall', 'frame_triplets', 'frame_gt_triplets',
           'box_iou_plus1', 'match_ranks']

NUM_ATT, NUM_SPA, NUM_CON = 3, 6, 17
NUM_PREDICATES = NUM_ATT + NUM_SPA + NUM_CON
AG_GROUPS = (NUM_ATT, NUM_SPA, NUM_CON)
PERSON = 1  # the person's index in ActionGenomeDataset's classes
NO_MATCH = np.iinfo(np.int64).max  # rank of a ground truth never matched


def frame_gt_triplets(person_box: np.ndarray, obj_boxes: np.ndarray,
                      obj_labels: np.ndarray, attention: np.ndarray,
                      spatial: np.ndarray, contacting: np.ndarray,
                      groups: Tuple[int, int, int] = AG_GROUPS
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """One frame's ground truth as triplets.

    ``groups`` are the sizes of the attention, spatial and contacting
    groups (Action Genome's 3, 6, 17; another data set's, e.g. EASG's verbs,
    none, relations); predicate indices run through them in that order.

    Returns:
        ``(classes_and_predicate [G, 3], boxes [G, 8])``: rows
        ``(subject class, predicate in 0..sum(groups)-1, object class)``
        and the subject then object box.
    """
    NUM_ATT, NUM_SPA = groups[0], groups[1]
    rows, boxes = [], []
    for m in range(len(obj_labels)):
        pb, ob, oc = person_box, obj_boxes[m], int(obj_labels[m])
        rows.append((PERSON, int(attention[m]), oc))
        boxes.append(np.concatenate([pb, ob]))
        for s in np.nonzero(spatial[m])[0]:
            rows.append((oc, NUM_ATT + int(s), PERSON))
            boxes.append(np.concatenate([ob, pb]))
        for c in np.nonzero(contacting[m])[0]:
            rows.append((PERSON, NUM_ATT + NUM_SPA + int(c), oc))
            boxes.append(np.concatenate([pb, ob]))
    return (np.asarray(rows, np.int64).reshape(-1, 3),
            np.asarray(boxes, np.float64).reshape(-1, 8))


def frame_triplets(boxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                   pairs: np.ndarray, attention: np.ndarray,
                   spatial: np.ndarray, contacting: np.ndarray,
                   constraint: str, semi_threshold: float = 0.9,
                   no_constraint_top: int = 100,
                   groups: Tuple[int, int, int] = AG_GROUPS
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One frame's predicted triplets, best first.

    Args:
        boxes, labels, scores: The frame's predicted boxes ``[N, 4]``,
            classes ``[N]`` and class scores ``[N]``.
        pairs: ``[P, 2]`` (person index, object index) into ``boxes``.
        attention, spatial, contacting: ``[P, 3]``, ``[P, 6]``, ``[P, 17]``
            predicate scores (probabilities); ``[P, groups[i]]`` in general.
        constraint: ``'with'``, ``'semi'`` or ``'no'``.
        groups: The three group sizes (:func:`frame_gt_triplets`); a group
            of size 0 gives no triplet.

    Returns:
        ``(rows [T, 3], boxes [T, 8], scores [T])`` sorted by score.
    """
    P = len(pairs)
    n_att, n_spa, n_con = groups
    groups = ((attention, 0, False, n_att),
              (spatial, n_att, True, n_spa),
              (contacting, n_att + n_spa, False, n_con))
    pair_i, pred, flip, pscore = [], [], [], []
    for g, (s, offset, reverse, size) in enumerate(groups):
        # a frame may have no pair (SGDET: no person detected)
        s = np.asarray(s, np.float64).reshape(P, size)
        if size == 0:  # a group the data set does not have
            i = k = np.zeros(0, np.int64)
        elif constraint == 'with' or (constraint == 'semi' and g == 0):
            i = np.arange(P)
            k = s.argmax(1)
        elif constraint == 'semi':
            i, k = np.nonzero(s > semi_threshold)
        elif constraint == 'no':
            i, k = np.meshgrid(np.arange(P), np.arange(s.shape[1]),
                               indexing='ij')
            i, k = i.reshape(-1), k.reshape(-1)
        else:
            raise ValueError(f"constraint={constraint!r} must be 'with', "
                             "'semi' or 'no'")
        pair_i.append(i)
        pred.append(k + offset)
        flip.append(np.full(len(i), reverse))
        pscore.append(s[i, k])
    order_key = np.concatenate([np.stack([i, np.full(len(i), g)], 1)
                                for g, i in enumerate(pair_i)])
    pair_i, pred = np.concatenate(pair_i), np.concatenate(pred)
    flip, pscore = np.concatenate(flip), np.concatenate(pscore)
    # candidate order: pair by pair, then attention, spatial, contacting
    base = np.lexsort((order_key[:, 1], order_key[:, 0]))
    pair_i, pred, flip, pscore = (pair_i[base], pred[base], flip[base],
                                  pscore[base])
    pairs = np.asarray(pairs, np.int64).reshape(-1, 2)
    subj = np.where(flip, pairs[pair_i, 1], pairs[pair_i, 0])
    obj = np.where(flip, pairs[pair_i, 0], pairs[pair_i, 1])
    scores = np.asarray(scores, np.float64)
    total = scores[subj] * scores[obj] * pscore
    order = np.argsort(-total, kind='stable')
    if constraint == 'no':
        order = order[:no_constraint_top]
    labels = np.asarray(labels, np.int64)
    boxes = np.asarray(boxes, np.float64)
    rows = np.stack([labels[subj], pred, labels[obj]], 1)[order]
    tboxes = np.concatenate([boxes[subj], boxes[obj]], 1)[order]
    return rows.reshape(-1, 3), tboxes.reshape(-1, 8), total[order]


def match_ranks(gt_rows: np.ndarray, gt_boxes: np.ndarray,
                pred_rows: np.ndarray, pred_boxes: np.ndarray,
                iou_threshold: float = 0.5) -> np.ndarray:
    """For each ground-truth triplet, the rank of the first prediction that
    matches it (:data:`NO_MATCH` when none does), ``[G]``."""
    G, T = len(gt_rows), len(pred_rows)
    if T == 0:
        return np.full(G, NO_MATCH, np.int64)
    same = (gt_rows[:, None, :] == pred_rows[None, :, :]).all(-1)  # [G, T]
    sub = box_iou_plus1(gt_boxes[:, :4], pred_boxes[:, :4])
    obj = box_iou_plus1(gt_boxes[:, 4:], pred_boxes[:, 4:])
    hit = same & (sub >= iou_threshold) & (obj >= iou_threshold)
    return np.where(hit.any(1), hit.argmax(1), NO_MATCH)


def _np(x) -> np.ndarray:
    if hasattr(x, 'detach'):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


@METRICS.register_module()
class SceneGraphRecall(BaseMetric):
    """R@K and mR@K with, semi and no constraint (see the module doc).

    Each data sample (one video, as ``PackSceneGraphInputs`` and the
    scene-graph models write it) holds the ground truth (``person_boxes``,
    ``obj_frames``, ``obj_boxes``, ``obj_labels``, ``attention``,
    ``spatial``, ``contacting``) and the predictions: ``pred_boxes``
    ``[N, 4]`` (original pixels), ``pred_box_frames`` ``[N]``,
    ``pred_labels`` ``[N]``, ``pred_scores`` ``[N]``, ``pred_pairs``
    ``[P, 2]`` (person, object) indices into them, and
    ``pred_attention`` ``[P, 3]`` (probabilities), ``pred_spatial``
    ``[P, 6]``, ``pred_contacting`` ``[P, 17]``.

    Returned keys: ``<c>_R@K`` and ``<c>_mR@K`` for ``c`` in
    ``constraints`` and ``K`` in ``ks``; the per-predicate recall table is
    logged, and kept in :attr:`per_predicate` until the next evaluation.

    Args:
        ks (Sequence[int]): The K of R@K.
        constraints (Sequence[str]): Among ``'with'``, ``'semi'``, ``'no'``.
        iou_threshold (float): Box IoU needed for a match.
        semi_threshold (float): Score above which ``semi`` keeps a spatial
            or contacting predicate.
        predicates (Sequence[str], optional): Predicate names for the table;
            by default the data set's ``metainfo['predicates']`` (Action
            Genome's 26 without one).
        table_ks (Sequence[int]): The K whose per-predicate recall is logged
            (every constraint).

    The sizes of the three predicate groups are Action Genome's (3, 6, 17)
    unless the data set's ``metainfo['predicate_groups']`` says otherwise
    (EASG: verbs, none, relations; see :class:`EASGDataset`).
    """
    default_prefix: Optional[str] = 'sg'

    def __init__(self,
                 ks: Sequence[int] = (10, 20, 50, 100),
                 constraints: Sequence[str] = ('with', 'semi', 'no'),
                 iou_threshold: float = 0.5,
                 semi_threshold: float = 0.9,
                 predicates: Optional[Sequence[str]] = None,
                 table_ks: Sequence[int] = (20, ),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        bad = [c for c in constraints if c not in ('with', 'semi', 'no')]
        if bad:
            raise ValueError(f'constraints={tuple(constraints)} has unknown '
                             f"{bad}; expected among 'with', 'semi', 'no'")
        self.ks = tuple(int(k) for k in ks)
        self.constraints = tuple(constraints)
        self.iou_threshold = float(iou_threshold)
        self.semi_threshold = float(semi_threshold)
        self._predicates = tuple(predicates) if predicates else None
        self.table_ks = tuple(int(k) for k in table_ks)
        self.per_predicate: Dict[str, Dict[str, float]] = {}

    @property
    def groups(self) -> Tuple[int, int, int]:
        """The attention, spatial and contacting group sizes."""
        groups = (self.dataset_meta or {}).get('predicate_groups')
        return tuple(int(g) for g in groups) if groups else AG_GROUPS

    @property
    def predicates(self) -> Tuple[str, ...]:
        if self._predicates is not None:
            return self._predicates
        names = (self.dataset_meta or {}).get('predicates')
        return tuple(names) if names else AG_PREDICATES

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        # one result per video: mmengine cuts ``results`` to the data
        # set's length when it gathers them
        for sample in data_samples:
            self.results.append(self._video_results(sample))

    def _video_results(self, s: dict) -> List[dict]:
        g = {k: _np(s[k]) for k in ('person_boxes', 'obj_frames', 'obj_boxes',
                                    'obj_labels', 'attention', 'spatial',
                                    'contacting')}
        p = {k: _np(s[k]) for k in ('pred_boxes', 'pred_box_frames',
                                    'pred_labels', 'pred_scores',
                                    'pred_pairs', 'pred_attention',
                                    'pred_spatial', 'pred_contacting')}
        pair_frames = p['pred_box_frames'][p['pred_pairs'][:, 0]] \
            if len(p['pred_pairs']) else np.zeros(0, np.int64)
        groups = self.groups
        out = []
        for t in range(len(g['person_boxes'])):
            m = g['obj_frames'] == t
            gt_rows, gt_boxes = frame_gt_triplets(
                g['person_boxes'][t], g['obj_boxes'][m], g['obj_labels'][m],
                g['attention'][m], g['spatial'][m], g['contacting'][m],
                groups)
            if len(gt_rows) == 0:
                out.append(dict(empty=True))
                continue
            in_frame = np.nonzero(p['pred_box_frames'] == t)[0]
            remap = np.full(len(p['pred_boxes']), -1, np.int64)
            remap[in_frame] = np.arange(len(in_frame))
            pm = pair_frames == t
            pairs = remap[p['pred_pairs'][pm]]
            # int16: EASG has 211 predicates (int8 would wrap)
            res = dict(empty=False, preds=gt_rows[:, 1].astype(np.int16))
            for c in self.constraints:
                rows, boxes, _ = frame_triplets(
                    p['pred_boxes'][in_frame], p['pred_labels'][in_frame],
                    p['pred_scores'][in_frame], pairs,
                    p['pred_attention'][pm], p['pred_spatial'][pm],
                    p['pred_contacting'][pm], c, self.semi_threshold,
                    groups=groups)
                res[c] = match_ranks(gt_rows, gt_boxes, rows, boxes,
                                     self.iou_threshold)
            out.append(res)
        return out

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        results = [f for video in results for f in video]
        frames = [r for r in results if not r['empty']]
        empty = len(results) - len(frames)
        if empty:
            print_log(f'SceneGraphRecall: {empty} frames without a ground-'
                      'truth triplet were not counted', logger='current',
                      level=30)
        metrics: Dict[str, float] = {}
        self.per_predicate = {}
        if not frames:
            return {f'{c}_R@{k}': float('nan') for c in self.constraints
                    for k in self.ks}
        preds = np.concatenate([r['preds'] for r in frames]).astype(np.int64)
        num_predicates = sum(self.groups)
        if len(self.predicates) != num_predicates:
            raise ValueError(
                f'SceneGraphRecall: {len(self.predicates)} predicate names '
                f'for groups of sizes {self.groups} ({num_predicates} '
                'predicates); set predicates= to match, or leave it to the '
                "data set's metainfo")
        count = np.bincount(preds, minlength=num_predicates)
        present = count > 0
        for c in self.constraints:
            ranks = np.concatenate([r[c] for r in frames])
            for k in self.ks:
                per_frame = [np.mean(r[c] < k) for r in frames]
                metrics[f'{c}_R@{k}'] = float(np.mean(per_frame))
                hit = np.bincount(preds[ranks < k], minlength=num_predicates)
                recall = hit[present] / count[present]
                metrics[f'{c}_mR@{k}'] = float(recall.mean())
                self.per_predicate[f'{c}_R@{k}'] = {
                    self.predicates[i]: float(hit[i] / count[i])
                    for i in np.nonzero(present)[0]
                }
        self._log_table(count)
        return metrics

    def _log_table(self, count: np.ndarray) -> None:
        cols = [f'{c}_R@{k}' for k in self.table_ks
                for c in self.constraints
                if f'{c}_R@{k}' in self.per_predicate]
        lines = ['predicate'.ljust(22) + 'count'.rjust(7) +
                 ''.join(c.rjust(12) for c in cols)]
        for i, name in enumerate(self.predicates):
            if count[i]:
                lines.append(name.ljust(22) + str(int(count[i])).rjust(7) +
                             ''.join(f'{self.per_predicate[c][name]:12.4f}'
                                     for c in cols))
        print_log('SceneGraphRecall per predicate:\n' + '\n'.join(lines),
                  logger='current')

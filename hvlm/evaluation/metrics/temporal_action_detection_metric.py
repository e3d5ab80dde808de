"""Temporal action detection mAP and frame-level mAP."""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.registry import METRICS
from .average_precision import interpolated_ap, ranked_ap
from .observed_span import observed_span, overlaps


def segment_tiou(segment: np.ndarray, others: np.ndarray) -> np.ndarray:
    """``[G]`` tIoU of one ``[2]`` segment with ``others [G, 2]``, in
    float64 and without guarding the union: a zero-length segment against
    a zero-length one gives ``nan`` (0 / 0), as in the ActivityNet kit, so
    that ties and this corner case rank exactly as there."""
    inter = (np.minimum(segment[1], others[:, 1]) -
             np.maximum(segment[0], others[:, 0])).clip(0)  # [G]
    union = (others[:, 1] - others[:, 0]) + (segment[1] - segment[0]) - inter
    with np.errstate(invalid='ignore', divide='ignore'):
        return inter / union


def detection_ap(predictions: List[tuple],
                 ground_truth: Dict[int, np.ndarray],
                 tiou: float) -> float:
    """ActivityNet average precision of one class at one tIoU threshold.

    Equal, ties included, to ``compute_average_precision_detection`` of the
    ActivityNet evaluation kit (``Evaluation/eval_detection.py``) fed the
    same predictions in the same order. Detections of the class over all
    videos are ranked by ``np.argsort(scores)[::-1]`` on float64 scores,
    the reference's own ranking: it is not "first come first" for tied
    scores (numpy's default sort is not stable, and reversing puts the
    *later* of two tied items first when numpy keeps them in order), so a
    stable sort would give other numbers on ties. Each detection then
    tries the ground-truth segments of its video in the same
    ``argsort()[::-1]`` order of their tIoU: the first one below ``tiou``
    makes it a false positive; the first one not yet matched makes it a
    true positive (and is matched). AP is :func:`interpolated_ap` over the
    ground-truth count.

    Args:
        predictions: ``(video, score, start, end)`` tuples, in input order
            (videos in dataset order, a video's segments in its order).
        ground_truth: ``video -> [G, 2]`` float64 segments of the class,
            in annotation order.
        tiou: Threshold.
    """
    num_positives = sum(len(g) for g in ground_truth.values())
    scores = np.array([p[1] for p in predictions], dtype=np.float64)
    matched = {v: np.zeros(len(g), dtype=bool)
               for v, g in ground_truth.items()}
    tp = np.zeros(len(predictions))
    for rank, i in enumerate(np.argsort(scores)[::-1]):
        video, _, start, end = predictions[i]
        gts = ground_truth.get(video)
        if gts is None or len(gts) == 0:
            continue
        ious = segment_tiou(np.array([start, end], dtype=np.float64), gts)
        for j in np.argsort(ious)[::-1]:
            if ious[j] < tiou:
                break
            if not matched[video][j]:
                matched[video][j] = True
                tp[rank] = 1
                break
    return interpolated_ap(tp, num_positives)


@METRICS.register_module()
class TemporalActionDetectionMetric(BaseMetric):
    """Segment mAP at several tIoU thresholds and frame-level mAP.

    - ``mAP@<t>``: for each threshold ``t`` (default 0.3, 0.5, 0.7), the
      mean over the classes present in the ground truth of their
      :func:`detection_ap`; ``mAP`` is the mean over the thresholds (the
      ActivityNet protocol, Heilbron et al. 2015, evaluated at these
      thresholds as in the original HierarchicalVLM).
    - ``frame_mAP``: for each class present in the labelled frames, the
      :func:`ranked_ap` of all labelled frames ranked by the predicted
      probability of that class (``pred_frame_scores``); the mean over
      those classes (the Charades per-frame mAP, Sigurdsson et al. 2016).
    - ``num_gt``: ground-truth segments scored.

    With ``observed_only=True`` (default) a ground-truth segment counts
    only if it overlaps the span that the sampled frames show
    (:func:`observed_span`), and is cut to that span: a model fed one clip
    of a long video cannot localise what it never saw. Set it False for
    the plain whole-video protocol.

    Args:
        tiou_thresholds (sequence of float): tIoU thresholds.
        observed_only (bool): See above.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'detection'``.
    """
    default_prefix: Optional[str] = 'detection'

    def __init__(self,
                 tiou_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                 observed_only: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if not tiou_thresholds or not all(0 < t <= 1
                                          for t in tiou_thresholds):
            raise ValueError(f'tiou_thresholds={tiou_thresholds} must be a '
                             'non-empty sequence of values in (0, 1]')
        self.tiou_thresholds = tuple(tiou_thresholds)
        self.observed_only = observed_only

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            # One result per video (mmengine cuts the gathered list to the
            # dataset size, so none may be skipped).
            result = dict(segments=None)
            if sample.get('gt_segments') is not None:
                if sample.get('pred_segments') is None:
                    raise ValueError(
                        f'video {sample.get("video_id", "?")!r} has '
                        'gt_segments but no pred_segments; is an '
                        'ActionDetectionHead in the model?')
                gt = torch.as_tensor(sample['gt_segments'],
                                     dtype=torch.float64).reshape(-1, 2)
                labels = torch.as_tensor(sample['gt_segment_labels']).long()
                span = observed_span(sample.get('frame_times')) \
                    if self.observed_only else None
                if span is not None:
                    keep = torch.tensor(
                        [overlaps(s, e, span) for s, e in gt.tolist()],
                        dtype=torch.bool)
                    gt, labels = gt[keep], labels[keep]
                    gt = gt.clamp(span[0], span[1])
                result = dict(
                    segments=gt, labels=labels,
                    pred_segments=torch.as_tensor(
                        sample['pred_segments']).reshape(-1, 2).double().cpu(),
                    pred_labels=torch.as_tensor(
                        sample['pred_segment_labels']).long().cpu(),
                    pred_scores=torch.as_tensor(
                        sample['pred_segment_scores']).double().cpu())
            frame_gt = sample.get('gt_frame_labels')
            frame_scores = sample.get('pred_frame_scores')
            if frame_gt is not None and frame_scores is not None:
                frame_gt = torch.as_tensor(frame_gt).reshape(-1).cpu()
                keep = frame_gt >= 0
                result['frame_gt'] = frame_gt[keep]
                result['frame_scores'] = torch.as_tensor(
                    frame_scores).float().cpu()[keep]
            self.results.append(result)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        nan = float('nan')
        metrics = {}
        gt_by_class = defaultdict(dict)  # class -> video -> [G, 2]
        pred_by_class = defaultdict(list)  # class -> [(video, s, a, b)]
        num_gt = 0
        for video, r in enumerate(results):
            if r['segments'] is None:
                continue
            num_gt += len(r['segments'])
            for k in r['labels'].unique().tolist():
                gt_by_class[k][video] = \
                    r['segments'][r['labels'] == k].numpy()
            for (s, e), k, score in zip(r['pred_segments'].tolist(),
                                        r['pred_labels'].tolist(),
                                        r['pred_scores'].tolist()):
                pred_by_class[k].append((video, score, s, e))
        if not gt_by_class:
            print_log('TemporalActionDetectionMetric: no ground-truth '
                      'segment to score; reporting nan', logger='current',
                      level=30)
        per_thr = []
        for t in self.tiou_thresholds:
            aps = [detection_ap(pred_by_class[k], gt_by_class[k], t)
                   for k in sorted(gt_by_class)]
            value = sum(aps) / len(aps) if aps else nan
            metrics[f'mAP@{t:g}'] = value
            per_thr.append(value)
        metrics['mAP'] = sum(per_thr) / len(per_thr)
        frames = [r for r in results if 'frame_gt' in r]
        frame_gt = torch.cat([r['frame_gt'] for r in frames]) if frames \
            else torch.zeros(0, dtype=torch.long)
        if frame_gt.numel():
            scores = torch.cat([r['frame_scores'] for r in frames])
            aps = [ranked_ap(scores[:, k], frame_gt == k)
                   for k in frame_gt.unique().tolist()]
            metrics['frame_mAP'] = sum(aps) / len(aps)
        else:
            metrics['frame_mAP'] = nan
        metrics['num_gt'] = float(num_gt)
        return metrics

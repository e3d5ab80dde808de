"""From per-frame scores to scored temporal segments."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def temporal_smooth(x: Tensor, window: int) -> Tensor:
    """Moving average of ``x [B, F, D]`` over ``window`` frames (odd),
    centred; at the ends the average is over the frames that exist, so a
    constant sequence stays constant. ``window=1`` returns ``x``."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f'window={window} must be a positive odd integer')
    if window == 1:
        return x
    y = F.avg_pool1d(
        x.transpose(1, 2),  # [B, D, F]
        window, stride=1, padding=window // 2, count_include_pad=False)
    return y.transpose(1, 2)  # [B, F, D]


def temporal_iou(a: Tensor, b: Tensor) -> Tensor:
    """``[A, B]`` temporal IoU of segments ``a [A, 2]`` and ``b [B, 2]``
    (start, end): overlap length over union length."""
    inter = (torch.minimum(a[:, None, 1], b[None, :, 1]) -
             torch.maximum(a[:, None, 0], b[None, :, 0])).clamp_min(0)
    union = ((a[:, 1] - a[:, 0])[:, None] + (b[:, 1] - b[:, 0])[None] -
             inter)
    return inter / union.clamp_min(1e-12)


def temporal_nms(segments: Tensor,
                 scores: Tensor,
                 labels: Tensor,
                 iou_thr: float,
                 max_keep: Optional[int] = None) -> Tensor:
    """Indices kept by class-wise greedy non-maximum suppression, best
    first: a segment is dropped when it overlaps a better-scored kept
    segment of the same class with tIoU > ``iou_thr``.

    Each candidate is compared with the segments kept so far only (never
    an ``[S, S]`` matrix), and the search stops once ``max_keep`` are kept:
    an hour of video gives tens of thousands of candidates, whose pairwise
    IoU matrix alone would take gigabytes.
    """
    seg = segments.detach().double().cpu().numpy()  # [S, 2]
    lab = labels.detach().cpu().numpy()  # [S]
    order = scores.detach().cpu().argsort(descending=True).tolist()
    limit = len(order) if max_keep is None else max_keep
    kept: List[int] = []
    kept_seg = np.empty((min(limit, len(order)), 2))  # [k, 2]
    kept_lab = np.empty(min(limit, len(order)), dtype=lab.dtype)  # [k]
    for i in order:
        if len(kept) >= limit:
            break
        k = len(kept)
        same = kept_lab[:k] == lab[i]  # [k]
        if same.any():
            other = kept_seg[:k][same]  # [k', 2]
            inter = (np.minimum(other[:, 1], seg[i, 1]) -
                     np.maximum(other[:, 0], seg[i, 0])).clip(min=0)
            union = (other[:, 1] - other[:, 0]) + (seg[i, 1] - seg[i, 0]) \
                - inter
            if (inter / np.maximum(union, 1e-12) > iou_thr).any():
                continue
        kept_seg[k], kept_lab[k] = seg[i], lab[i]
        kept.append(i)
    return torch.tensor(kept, dtype=torch.long)


def decode_segments(cls_scores: Tensor,
                    actionness: Tensor,
                    times: Tensor,
                    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                    nms_iou: float = 0.5,
                    max_segments: int = 100
                    ) -> Tuple[Tensor, Tensor, Tensor]:
    """Group frames into action segments at several actionness thresholds
    (the multi-threshold grouping of Zhao et al. 2017, "Temporal Action
    Detection with Structured Segment Networks", Sec. 3.4), then suppress
    duplicates with :func:`temporal_nms`.

    At each threshold, a candidate is a maximal run of consecutive frames
    whose actionness is at least the threshold and whose most likely class
    is the same; its score is the mean of ``class probability *
    actionness`` over the run. A run from frame ``i`` to ``j`` spans
    ``[times[i], times[j] + gap]`` with ``gap`` the median spacing of
    ``times``.

    Args:
        cls_scores: ``[F, K]`` class probabilities per frame.
        actionness: ``[F]`` probability that a frame shows an action.
        times: ``[F]`` frame times in seconds, increasing.
        thresholds: Actionness thresholds.
        nms_iou: tIoU above which a worse same-class segment is dropped.
        max_segments: Most segments returned.

    Returns:
        ``segments [S, 2]`` (seconds), ``labels [S]``, ``scores [S]``,
        best first.
    """
    times = times.to(torch.float32)
    gap = float(times.diff().median()) if times.numel() > 1 else 1.
    best = cls_scores.argmax(-1)  # [F]
    frame_score = cls_scores.gather(
        1, best[:, None])[:, 0] * actionness  # [F]
    # plain lists: indexing a tensor element by element is ~100x slower
    best_list, time_list = best.tolist(), times.tolist()
    # prefix sums for the mean score of a run, in float64
    cumulative = np.concatenate(
        [[0.], np.cumsum(frame_score.double().cpu().numpy())])  # [F + 1]
    segments, labels, scores = [], [], []
    for thr in thresholds:
        active = (actionness >= thr).tolist()
        start = None
        for f in range(len(best_list) + 1):
            run_ends = start is not None and (
                f == len(best_list) or not active[f]
                or best_list[f] != best_list[start])
            if run_ends:
                segments.append([time_list[start], time_list[f - 1] + gap])
                labels.append(best_list[start])
                scores.append(
                    float(cumulative[f] - cumulative[start]) / (f - start))
                start = None
            if f < len(best_list) and active[f] and start is None:
                start = f
    if not segments:
        return (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long),
                torch.zeros(0))
    segments = torch.tensor(segments)  # [S, 2]
    labels = torch.tensor(labels)  # [S]
    scores = torch.tensor(scores, dtype=torch.float32)  # [S]
    keep = temporal_nms(segments, scores, labels, nms_iou, max_segments)
    return segments[keep], labels[keep], scores[keep]

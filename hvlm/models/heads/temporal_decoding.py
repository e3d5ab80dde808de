"""From per-frame scores to scored temporal segments."""
from typing import Sequence, Tuple

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


def temporal_nms(segments: Tensor, scores: Tensor, labels: Tensor,
                 iou_thr: float) -> Tensor:
    """Indices kept by class-wise greedy non-maximum suppression, best
    first: a segment is dropped when it overlaps a better-scored kept
    segment of the same class with tIoU > ``iou_thr``."""
    order = scores.argsort(descending=True)
    iou = temporal_iou(segments, segments)  # [S, S]
    same = labels[:, None] == labels[None, :]  # [S, S]
    kept = []
    for i in order.tolist():
        if all(not (same[i, j] and iou[i, j] > iou_thr) for j in kept):
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
    segments, labels, scores = [], [], []
    for thr in thresholds:
        active = actionness >= thr
        start = None
        for f in range(len(best) + 1):
            run_ends = start is not None and (
                f == len(best) or not active[f] or best[f] != best[start])
            if run_ends:
                segments.append([float(times[start]),
                                 float(times[f - 1]) + gap])
                labels.append(int(best[start]))
                scores.append(float(frame_score[start:f].mean()))
                start = None
            if f < len(best) and active[f] and start is None:
                start = f
    if not segments:
        return (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long),
                torch.zeros(0))
    segments = torch.tensor(segments)  # [S, 2]
    labels = torch.tensor(labels)  # [S]
    scores = torch.tensor(scores)  # [S]
    keep = temporal_nms(segments, scores, labels, nms_iou)[:max_segments]
    return segments[keep], labels[keep], scores[keep]

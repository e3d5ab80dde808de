"""Average precision, the two definitions hvlm's metrics use."""
import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor


def interpolated_ap(tp: ArrayLike, num_positives: int) -> float:
    """ActivityNet's average precision of a ranked list (Heilbron et al.
    2015, "ActivityNet"; the ``interpolated_prec_rec`` of its evaluation
    kit, the PASCAL VOC 2010+ definition): precision is made monotone
    decreasing from the right, and AP is the area under that precision /
    recall step curve.

    Computed in float64 with numpy, summing the steps where recall changes
    and only those, as the kit does: the same terms in the same order give
    the same float, not one a few ulps away.

    Args:
        tp: ``[D]`` 1 for a true positive, 0 for a false positive, in
            decreasing score order.
        num_positives: Ground-truth instances (recall's denominator).
    """
    if num_positives <= 0:
        raise ValueError(f'num_positives={num_positives} must be > 0')
    tp = np.asarray(tp, dtype=np.float64).reshape(-1)  # [D]
    cum_tp = np.cumsum(tp)
    cum_fp = np.cumsum(1 - tp)
    precision = np.concatenate([[0.], cum_tp / (cum_tp + cum_fp), [0.]])
    recall = np.concatenate([[0.], cum_tp / float(num_positives), [1.]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]  # monotone
    steps = np.flatnonzero(recall[1:] != recall[:-1]) + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) *
                        precision[steps]))


def ranked_ap(scores: Tensor, positive: Tensor) -> float:
    """Non-interpolated average precision: the mean, over the positives,
    of the precision at each positive's rank when items are sorted by
    decreasing score (ties keep their input order). The definition of
    the Charades frame mAP (Sigurdsson et al. 2016, "Hollywood in Homes")
    and of ``sklearn.metrics.average_precision_score`` without ties.

    Args:
        scores: ``[N]`` scores.
        positive: ``[N]`` bool, at least one True.
    """
    if not bool(positive.any()):
        raise ValueError('ranked_ap needs at least one positive')
    order = scores.argsort(descending=True, stable=True)
    hits = positive[order].to(torch.float64)  # [N]
    precision = hits.cumsum(0) / torch.arange(
        1, hits.numel() + 1, dtype=torch.float64)
    return float((precision * hits).sum() / hits.sum())

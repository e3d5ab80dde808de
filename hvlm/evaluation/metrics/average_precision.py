"""Average precision, the two definitions hvlm's metrics use."""
import torch
from torch import Tensor


def interpolated_ap(tp: Tensor, num_positives: int) -> float:
    """ActivityNet's average precision of a ranked list (Heilbron et al.
    2015, "ActivityNet"; the ``interpolated_prec_rec`` of its evaluation
    kit, the PASCAL VOC 2010+ definition): precision is made monotone
    decreasing from the right, and AP is the area under that precision /
    recall step curve.

    Args:
        tp: ``[D]`` 1 for a true positive, 0 for a false positive, in
            decreasing score order.
        num_positives: Ground-truth instances (recall's denominator).
    """
    if num_positives <= 0:
        raise ValueError(f'num_positives={num_positives} must be > 0')
    tp = tp.to(torch.float64)
    cum_tp = tp.cumsum(0)
    precision = cum_tp / torch.arange(1, tp.numel() + 1, dtype=torch.float64)
    recall = cum_tp / num_positives
    precision = torch.cat([torch.zeros(1, dtype=torch.float64), precision,
                           torch.zeros(1, dtype=torch.float64)])
    recall = torch.cat([torch.zeros(1, dtype=torch.float64), recall,
                        torch.ones(1, dtype=torch.float64)])
    precision = precision.flip(0).cummax(0).values.flip(0)  # monotone
    step = recall[1:] - recall[:-1]
    return float((step * precision[1:]).sum())


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

"""How often the domain router picks the video's true domain."""
import math
from collections import Counter
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.registry import METRICS


@METRICS.register_module()
class DomainAccuracy(BaseMetric):
    """Routing accuracy: top-1 accuracy of the predicted domain.

    Reads the metadata's ``domain`` (ground truth, a name) and the model's
    ``pred_domain`` (the router's argmax, a name) of every video; videos
    whose domain is unknown (no ``domain``, or ``domain_id == -1``) are not
    counted.

    - ``top1``: correctly routed videos / videos with a known domain.
    - ``acc_<domain>``: the same over the videos of one true domain (the
      per-class recall), for every domain present in the ground truth.
    - ``mean_class_acc``: the mean of those, insensitive to imbalance.
    - ``chance_top1``: the ``top1`` of always predicting the most frequent
      true domain, the trivial baseline printed beside it.

    With no video of known domain every value is ``nan`` and a warning is
    logged.

    Args:
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'domain'``.
    """
    default_prefix: Optional[str] = 'domain'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            gt = sample.get('domain')
            if sample.get('domain_id', 0) == -1:
                gt = None
            pred = sample.get('pred_domain')
            if gt is not None and pred is None:
                raise ValueError(
                    f'video {sample.get("video_id", "?")!r} has no '
                    'pred_domain: DomainAccuracy needs a model with a '
                    'router (model.router=dict(type="DomainRouter", ...))')
            # one result per video, even unscored (see FrameActionMetric)
            self.results.append(dict(gt=gt, pred=pred))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        pairs = [(r['gt'], r['pred']) for r in results if r['gt'] is not None]
        if not pairs:
            print_log('DomainAccuracy: no video with a known domain; every '
                      'value is nan', logger='current', level=30)
            nan = math.nan
            return dict(top1=nan, mean_class_acc=nan, chance_top1=nan)
        counts = Counter(gt for gt, _ in pairs)
        correct = Counter(gt for gt, pred in pairs if gt == pred)
        metrics = dict(
            top1=sum(correct.values()) / len(pairs),
            chance_top1=max(counts.values()) / len(pairs))
        per_class = {d: correct[d] / n for d, n in sorted(counts.items())}
        metrics['mean_class_acc'] = sum(per_class.values()) / len(per_class)
        metrics.update({f'acc_{d}': v for d, v in per_class.items()})
        return metrics

"""Video recognition accuracy as MMAction2 defines it, and the
base-to-novel report."""
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from hvlm.registry import METRICS


def top_k_accuracy(scores: np.ndarray, labels: np.ndarray,
                   k: int) -> float:
    """Share of videos whose label is among their ``k`` highest scores
    (``scores [N, K]``, ``labels [N]``)."""
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind='stable')[:, :k]  # [N, k]
    return float((top == labels[:, None]).any(axis=1).mean())


def mean_class_accuracy(scores: np.ndarray, labels: np.ndarray) -> float:
    """MMAction2's mean class accuracy: the mean, over every label that
    occurs as a ground truth or as a prediction, of that label's recall; a
    label only ever predicted (no video of it) counts 0."""
    pred = scores.argmax(axis=1)
    present = np.union1d(pred, labels)
    recalls = []
    for c in present:
        of_c = labels == c
        recalls.append(float((pred[of_c] == c).mean()) if of_c.any()
                       else 0.0)
    return float(np.mean(recalls))


def harmonic_mean(base: float, novel: float) -> float:
    """``2 b n / (b + n)``, 0 when both are 0."""
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


@METRICS.register_module()
class RecognitionMetric(BaseMetric):
    """``top1``, ``top5`` and ``mean_class_acc`` of video-level scores.

    Reads ``pred_scores`` (``[num_classes]``, e.g. the view-averaged
    probabilities of :class:`CLIPRecognizer`) and ``gt_label`` of every
    data sample.

    With ``base_novel=True`` the scores cover all classes of a
    base-to-novel split whose first ``ceil(K / 2)`` labels are the base
    classes (the datasets' ``class_subset`` rule): ``base_top1`` is the
    top-1 of the base classes' videos among the base classes only,
    ``novel_top1`` likewise, and ``hm`` their harmonic mean, the figure
    ViFi-CLIP and CoCoOp report. Since a class's text feature does not
    depend on the other classes, restricting the scores equals testing with
    the half's class set (exactly so with one view; with several, the
    probabilities were averaged over the full set).

    Args:
        topk (Sequence[int]): The k of each ``top<k>``.
        base_novel (bool): Add ``base_top1``, ``novel_top1`` and ``hm``.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'recog'``.
    """
    default_prefix: Optional[str] = 'recog'

    def __init__(self,
                 topk: Sequence[int] = (1, 5),
                 base_novel: bool = False,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        self.base_novel = base_novel

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if 'pred_scores' not in sample or 'gt_label' not in sample:
                raise ValueError(
                    f'video {sample.get("video_id", "?")!r} lacks '
                    'pred_scores or gt_label: RecognitionMetric needs a '
                    'recognizer and PackRecognitionInputs')
            self.results.append(
                dict(scores=np.asarray(sample['pred_scores'].float().cpu()),
                     label=int(sample['gt_label'].reshape(-1)[0])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        scores = np.stack([r['scores'] for r in results])  # [N, K]
        labels = np.array([r['label'] for r in results])  # [N]
        metrics = {f'top{k}': top_k_accuracy(scores, labels, k)
                   for k in self.topk}
        metrics['mean_class_acc'] = mean_class_accuracy(scores, labels)
        if self.base_novel:
            half = (scores.shape[1] + 1) // 2
            base = labels < half
            b = top_k_accuracy(scores[base][:, :half], labels[base], 1) \
                if base.any() else 0.0
            n = top_k_accuracy(scores[~base][:, half:], labels[~base] - half,
                               1) if (~base).any() else 0.0
            metrics.update(base_top1=b, novel_top1=n, hm=harmonic_mean(b, n))
        return metrics

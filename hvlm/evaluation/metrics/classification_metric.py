"""Accuracy, macro-F1, per-class precision/recall and a confusion-matrix
image for classifiers."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from hvlm.registry import METRICS


def confusion_matrix(gt: np.ndarray, pred: np.ndarray,
                     num_classes: int) -> np.ndarray:
    """``[K, K]`` counts, rows the true class, columns the predicted."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (gt, pred), 1)
    return cm


def scores_from_confusion(cm: np.ndarray) -> Dict[str, np.ndarray]:
    """Per-class precision, recall and F1 from a confusion matrix.

    ``precision_k = TP / (TP + FP)``, ``recall_k = TP / (TP + FN)``,
    ``F1_k = 2 TP / (2 TP + FP + FN)``; each is **0 when its denominator
    is 0** (a class never predicted has precision 0; a class absent from
    both targets and predictions has F1 0).
    """
    tp = np.diag(cm).astype(np.float64)
    fp = cm.sum(0) - tp
    fn = cm.sum(1) - tp

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)

    return dict(precision=ratio(tp, tp + fp), recall=ratio(tp, tp + fn),
                f1=ratio(2 * tp, 2 * tp + fp + fn))


def render_confusion(cm: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """An RGB image ``[H, W, 3]`` uint8 of the row-normalised matrix with
    the counts written in the cells."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    side = 1.5 + 0.5 * len(classes)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm, cmap='Blues', vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha='right')
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(cm[i, j]), ha='center', va='center',
                    color='white' if norm[i, j] > 0.5 else 'black',
                    fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return img


@METRICS.register_module()
class ClassificationMetric(BaseMetric):
    """Single-label classification metrics over all configured classes.

    Reads ``gt_label`` and ``pred_label`` of every sample. With ``K`` the
    number of classes (``num_classes``, or the dataset's ``classes``):

    - ``accuracy``: correct / samples.
    - ``macro_f1``: the mean of ``F1_k`` over **all K classes**, where
      ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)`` and ``F1_k = 0`` when
      the class is absent from both targets and predictions. Libraries
      disagree on that case (some leave such a class out of the mean,
      which changes the score by which classes happen to be in the
      evaluation set); here every configured class counts, an absent one
      as 0.
    - ``precision_<class>``, ``recall_<class>``: per class, 0 where the
      denominator is 0 (see :func:`scores_from_confusion`).
    - ``mean_precision``, ``mean_recall``: their means over the K classes.

    The confusion matrix is drawn as a PNG: to ``out_file`` when given,
    and through the current mmengine visualizer (``add_image``, i.e.
    ``vis_data/vis_image/confusion_matrix_<step>.png`` with the
    ``LocalVisBackend``, and TensorBoard) when a Runner is running.

    Args:
        num_classes (int, optional): ``K``; default ``len(classes)`` of the
            dataset.
        out_file (str, optional): PNG path of the confusion matrix.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'cls'``.
    """
    default_prefix: Optional[str] = 'cls'

    def __init__(self, num_classes: Optional[int] = None,
                 out_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes
        self.out_file = out_file
        self.last_confusion: Optional[np.ndarray] = None

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            if 'pred_label' not in sample:
                raise ValueError('ClassificationMetric: a sample has no '
                                 'pred_label (is the model a classifier?)')
            self.results.append(
                (int(sample.get('gt_label')), int(sample.get('pred_label'))))

    def _classes(self) -> List[str]:
        classes = list((self.dataset_meta or {}).get('classes') or [])
        K = self.num_classes or len(classes)
        if not K:
            raise ValueError('ClassificationMetric: num_classes is not set '
                             'and the dataset has no classes')
        if len(classes) != K:
            classes = [str(k) for k in range(K)]
        return classes

    def compute_metrics(self, results: List) -> Dict[str, float]:
        classes = self._classes()
        K = len(classes)
        gt = np.array([r[0] for r in results], np.int64)
        pred = np.array([r[1] for r in results], np.int64)
        bad = gt[(gt < 0) | (gt >= K)]
        if len(bad):
            raise ValueError(f'ClassificationMetric: gt_label {bad[:5]} '
                             f'outside [0, {K})')
        cm = confusion_matrix(gt, pred, K)
        self.last_confusion = cm
        scores = scores_from_confusion(cm)
        metrics = dict(
            accuracy=float((gt == pred).mean()) if len(gt) else float('nan'),
            macro_f1=float(scores['f1'].mean()),
            mean_precision=float(scores['precision'].mean()),
            mean_recall=float(scores['recall'].mean()))
        for k, name in enumerate(classes):
            metrics[f'precision_{name}'] = float(scores['precision'][k])
            metrics[f'recall_{name}'] = float(scores['recall'][k])
        self._draw(cm, classes)
        return metrics

    def _draw(self, cm: np.ndarray, classes: List[str]) -> None:
        from mmengine.visualization import Visualizer
        try:
            visualizer = Visualizer.get_current_instance()
        except RuntimeError:  # no visualizer: not inside a Runner
            visualizer = None
        if self.out_file is None and visualizer is None:
            return
        img = render_confusion(cm, classes)
        if self.out_file is not None:
            import cv2
            os.makedirs(osp.dirname(osp.abspath(self.out_file)),
                        exist_ok=True)
            cv2.imwrite(self.out_file, cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        if visualizer is not None:
            from mmengine.logging import MessageHub
            step = MessageHub.get_current_instance().get_info('epoch', 0)
            visualizer.add_image('confusion_matrix', img, step=step)

"""ClassificationMetric against hand-counted values, absent classes
included, and its confusion-matrix PNG."""
import cv2
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from hvlm.registry import METRICS


def run(gt, pred, **kwargs):
    metric = METRICS.build(dict(type='ClassificationMetric', **kwargs))
    metric.dataset_meta = dict(classes=('a', 'b', 'c', 'd'))
    samples = []
    for g, p in zip(gt, pred):
        s = BaseDataElement()
        s.gt_label, s.pred_label = torch.tensor(g), torch.tensor(p)
        samples.append(s)
    metric.process({}, samples)
    return metric, metric.evaluate(len(samples))


def test_values_by_hand(tmp_path):
    # class d is absent from targets and predictions
    gt = [0, 0, 0, 1, 1, 2]
    pred = [0, 0, 1, 1, 2, 2]
    out_file = str(tmp_path / 'cm' / 'confusion.png')
    metric, m = run(gt, pred, out_file=out_file)
    assert m['cls/accuracy'] == pytest.approx(4 / 6)
    # a: TP 2 FP 0 FN 1 -> F1 4/5; b: TP 1 FP 1 FN 1 -> 2/4;
    # c: TP 1 FP 1 FN 0 -> 2/3; d: 0 (absent, counts 0)
    assert m['cls/macro_f1'] == pytest.approx((0.8 + 0.5 + 2 / 3 + 0) / 4)
    assert m['cls/precision_a'] == 1.0 and m['cls/recall_a'] == \
        pytest.approx(2 / 3)
    assert m['cls/precision_c'] == 0.5 and m['cls/recall_c'] == 1.0
    assert m['cls/precision_d'] == 0.0 and m['cls/recall_d'] == 0.0
    np.testing.assert_array_equal(
        metric.last_confusion,
        [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    img = cv2.imread(out_file)
    assert img is not None and img.shape[0] > 50


def test_num_classes_and_bad_labels():
    _, m = run([0, 1], [0, 1], num_classes=4)
    assert m['cls/macro_f1'] == pytest.approx(0.5)
    with pytest.raises(ValueError, match='outside'):
        run([0, 7], [0, 1])

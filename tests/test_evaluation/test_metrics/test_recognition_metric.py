"""RecognitionMetric: top-k and mean class accuracy (MMAction2's
definitions), base/novel/harmonic mean, against hand-derived values."""
import numpy as np
import pytest
import torch

from hvlm.registry import METRICS
from hvlm.structures import VideoDataSample

# 5 videos, 4 classes. argmax: 0, 1, 1, 3, 3; labels: 0, 0, 1, 2, 3.
SCORES = np.array([
    [.7, .1, .1, .1],
    [.2, .5, .2, .1],  # label 0, second best is 0 -> top-2 hit
    [.1, .6, .2, .1],
    [.1, .2, .3, .4],  # label 2 predicted 3; 2 is second
    [.0, .1, .2, .7],
])
LABELS = [0, 0, 1, 2, 3]


def run(metric_cfg, scores=SCORES, labels=LABELS):
    metric = METRICS.build(metric_cfg)
    samples = []
    for s, y in zip(scores, labels):
        d = VideoDataSample()
        d.pred_scores = torch.tensor(s)
        d.gt_label = torch.tensor([y])
        samples.append(d.to_dict())
    metric.process({}, samples)
    return metric.evaluate(len(samples))


def test_top_k_and_mean_class():
    out = run(dict(type='RecognitionMetric', topk=(1, 2)))
    assert out['recog/top1'] == pytest.approx(3 / 5)
    assert out['recog/top2'] == pytest.approx(5 / 5)
    # recalls: class 0: 1/2, 1: 1/1, 2: 0/1, 3: 1/1
    assert out['recog/mean_class_acc'] == pytest.approx((.5 + 1 + 0 + 1) / 4)


def test_class_only_predicted_counts_zero():
    # labels 0, 0; predictions 0, 1: class 1 has no video but is predicted
    # -> MMAction2 averages over {0, 1}: (1/2 + 0) / 2; class 2 neither.
    out = run(dict(type='RecognitionMetric', topk=(1, )),
              np.array([[.9, .1, 0], [.1, .9, 0]]), [0, 0])
    assert out['recog/mean_class_acc'] == pytest.approx(0.25)


def test_base_novel_harmonic_mean():
    # base = labels {0, 1}, novel = {2, 3}. Restricted argmax:
    # base videos: [.7,.1]->0 ok, [.2,.5]->1 wrong, [.1,.6]->1 ok: 2/3
    # novel videos: [.3,.4]->3 wrong (label 2), [.2,.7]->3 ok: 1/2
    out = run(dict(type='RecognitionMetric', base_novel=True))
    b, n = 2 / 3, 1 / 2
    assert out['recog/base_top1'] == pytest.approx(b)
    assert out['recog/novel_top1'] == pytest.approx(n)
    assert out['recog/hm'] == pytest.approx(2 * b * n / (b + n))

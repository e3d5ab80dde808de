"""ProbeAccuracy: kNN against a direct re-implementation, the linear probe
on features that are / are not linearly separable."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from hvlm.evaluation.metrics.probe_accuracy import (knn_accuracy,
                                                    linear_probe_accuracy)
from hvlm.registry import METRICS


def test_knn_matches_a_loop():
    rng = np.random.default_rng(0)
    feats, labels = rng.normal(size=(30, 4)), rng.integers(0, 3, 30)
    k, t = 5, 0.1
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    hits = 0
    for i in range(30):
        sims = [(x[i] @ x[j], j) for j in range(30) if j != i]
        votes = np.zeros(3)
        for s, j in sorted(sims, reverse=True)[:k]:
            votes[labels[j]] += np.exp(s / t)
        hits += votes.argmax() == labels[i]
    assert knn_accuracy(feats, labels, k, t) == pytest.approx(hits / 30)


def test_linear_probe_separable_and_not():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(3), 12)
    # class in one coordinate, the other coordinates noise
    feats = rng.normal(size=(36, 5))
    feats[:, 0] = labels * 10.
    assert linear_probe_accuracy(feats, labels, steps=30) == 1.0
    # identical features for every sample: nothing to learn beyond a guess
    assert linear_probe_accuracy(np.ones((36, 5)), labels, steps=30) <= 0.5


def test_metric_through_the_registry():
    metric = METRICS.build(dict(type='ProbeAccuracy', k=3))
    samples = []
    for i in range(12):
        s = BaseDataElement()
        s.gt_label = torch.tensor(i % 2)
        s.feature = torch.tensor([float(i % 2), 1., 0.5 * (i % 3)])
        samples.append(s)
    metric.process({}, samples)
    out = metric.evaluate(12)
    assert out['probe/knn_accuracy'] == 1.0
    assert out['probe/probe_accuracy'] == out['probe/linear_accuracy'] == 1.0
    assert out['probe/chance'] == 0.5
    bad = BaseDataElement()
    bad.gt_label = torch.tensor(-1)
    bad.feature = torch.zeros(3)
    with pytest.raises(ValueError, match='labelled'):
        metric.process({}, [bad])

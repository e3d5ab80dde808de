"""Focal, smoothed CE and their combination against their formulas."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hvlm.models.losses import inverse_frequency_weights
from hvlm.registry import MODELS


def softmax(z):
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 4)) * 2, np.array([0, 1, 3, 3, 2, 1])


def test_focal_loss_formula(batch):
    logits, y = batch
    p = softmax(logits)[np.arange(6), y]
    alpha = np.array([0.25, 0.5, 1.0, 2.0])
    for gamma, a in ((2., None), (0.5, alpha)):
        w = np.ones(6) if a is None else a[y]
        ref = np.mean(-w * (1 - p)**gamma * np.log(p))
        loss = MODELS.build(dict(type='FocalLoss', gamma=gamma,
                                 alpha=None if a is None else a.tolist()))
        np.testing.assert_allclose(
            loss(torch.tensor(logits), torch.tensor(y)).item(), ref,
            rtol=1e-6)
    # gamma 0 is cross-entropy
    loss = MODELS.build(dict(type='FocalLoss', gamma=0.))
    np.testing.assert_allclose(
        loss(torch.tensor(logits), torch.tensor(y)).item(),
        F.cross_entropy(torch.tensor(logits), torch.tensor(y)).item(),
        rtol=1e-6)


def test_smoothed_ce_and_class_weights_match_torch(batch):
    logits, y = torch.tensor(batch[0]), torch.tensor(batch[1])
    w = [1., 2., 0.5, 3.]
    loss = MODELS.build(dict(type='SoftCrossEntropyLoss',
                             label_smoothing=0.1, class_weight=w))
    ref = F.cross_entropy(logits, y, weight=torch.tensor(w).double(),
                          label_smoothing=0.1)
    torch.testing.assert_close(loss(logits, y), ref)
    # soft one-hot targets give the same as hard ones
    torch.testing.assert_close(loss(logits, F.one_hot(y, 4).double()), ref)
    np.testing.assert_allclose(inverse_frequency_weights([2, 6, 0, 4]),
                               [2., 2 / 3, 0., 1.])


def test_combined_loss_smooths_once(batch):
    logits, y = batch
    p = softmax(logits)
    K, eps = 4, 0.1
    onehot = np.eye(K)[y]
    focal = np.mean(-(onehot * (1 - p)**2 * np.log(p)).sum(1))
    smoothed = onehot * (1 - eps) + eps / K
    ce = np.mean(-(smoothed * np.log(p)).sum(1))
    loss = MODELS.build(dict(type='FocalSmoothedCELoss'))
    np.testing.assert_allclose(
        loss(torch.tensor(logits), torch.tensor(y)).item(),
        0.5 * focal + 0.5 * ce, rtol=1e-6)
    # mixed soft targets: focal on the mixture, CE on the smoothed mixture
    t = 0.7 * onehot + 0.3 * onehot[::-1]
    focal = np.mean(-(t * (1 - p)**2 * np.log(p)).sum(1))
    ce = np.mean(-((t * (1 - eps) + eps / K) * np.log(p)).sum(1))
    np.testing.assert_allclose(
        loss(torch.tensor(logits), torch.tensor(t)).item(),
        0.5 * focal + 0.5 * ce, rtol=1e-6)

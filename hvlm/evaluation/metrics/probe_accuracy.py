"""How linearly separable and how clustered self-supervised features are:
a linear probe and kNN on frozen features of a labelled split."""
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.evaluator import BaseMetric

from hvlm.registry import METRICS


def knn_accuracy(feats: np.ndarray, labels: np.ndarray, k: int = 20,
                 temperature: float = 0.07) -> float:
    """Leave-one-out kNN accuracy with cosine similarity: each sample's
    ``k`` nearest other samples vote for their labels with weight
    ``exp(sim / temperature)`` (the vote of InstDisc / DINO's kNN
    monitor)."""
    n = len(labels)
    k = min(k, n - 1)
    if k < 1:
        return float('nan')
    x = feats / np.linalg.norm(feats, axis=1, keepdims=True).clip(1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :k]  # [n, k]
    weights = np.exp(np.take_along_axis(sim, nearest, 1) / temperature)
    votes = np.zeros((n, labels.max() + 1))
    np.add.at(votes, (np.arange(n)[:, None], labels[nearest]), weights)
    return float((votes.argmax(1) == labels).mean())


def fit_linear_probe(train_x: torch.Tensor, train_y: torch.Tensor,
                     num_classes: int, steps: int = 200,
                     weight_decay: float = 1e-3
                     ) -> Callable[[torch.Tensor], torch.Tensor]:
    """A softmax regression on features standardised by ``train_x``
    (full-batch L-BFGS, ``steps`` iterations, L2 ``weight_decay``), fitted
    to the class ids ``train_y``; returns the function giving the
    predicted class ids of new features."""
    x = train_x.to(torch.float64)
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64,
                    requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps,
                            line_search_fn='strong_wolfe')

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, train_y) + \
            weight_decay * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)

    @torch.no_grad()
    def predict(feats: torch.Tensor) -> torch.Tensor:
        return (((feats.to(torch.float64) - mean) / std) @ w + b).argmax(1)

    return predict


def linear_probe_accuracy(feats: np.ndarray, labels: np.ndarray,
                          folds: int = 2, steps: int = 200,
                          weight_decay: float = 1e-3, seed: int = 0
                          ) -> float:
    """Cross-validated accuracy of :func:`fit_linear_probe` on frozen
    features: ``folds`` stratified folds, each scored by a probe trained
    on the others."""
    rng = np.random.default_rng(seed)
    fold_of = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        fold_of[idx] = np.arange(len(idx)) % folds
    x = torch.tensor(feats, dtype=torch.float64)
    y = torch.tensor(labels)
    correct = 0
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        if not train.any() or not test.any():
            continue
        predict = fit_linear_probe(x[train], y[train], labels.max() + 1,
                                   steps, weight_decay)
        correct += int((predict(x[test]) == y[test]).sum())
    return correct / len(labels)


@METRICS.register_module()
class ProbeAccuracy(BaseMetric):
    """Quality of frozen self-supervised features on a labelled split.

    Reads ``feature`` (written by ``SimCLR`` in ``predict`` mode) and
    ``gt_label`` of every sample and reports:

    - ``knn_accuracy``: leave-one-out weighted kNN (:func:`knn_accuracy`);
    - ``linear_accuracy``: a cross-validated linear probe
      (:func:`linear_probe_accuracy`);
    - ``probe_accuracy``: the linear probe's, the headline number;
    - ``chance``: the accuracy of always answering the most frequent class.

    Args:
        k (int): Neighbours of the kNN vote.
        folds (int): Cross-validation folds of the linear probe.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Default ``'probe'``.
    """
    default_prefix: Optional[str] = 'probe'

    def __init__(self, k: int = 20, folds: int = 2,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.k, self.folds = k, folds

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            feature, label = sample.get('feature'), sample.get('gt_label')
            if feature is None or label is None or int(label) < 0:
                raise ValueError(
                    'ProbeAccuracy needs `feature` (a SimCLR model) and a '
                    'gt_label >= 0 (a labelled dataset, labelled=True)')
            self.results.append((np.asarray(feature.float().cpu()),
                                 int(label)))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        feats = np.stack([r[0] for r in results]).astype(np.float64)
        labels = np.array([r[1] for r in results])
        linear = linear_probe_accuracy(feats, labels, self.folds)
        return dict(
            knn_accuracy=knn_accuracy(feats, labels, self.k),
            linear_accuracy=linear,
            probe_accuracy=linear,
            chance=float(np.bincount(labels).max() / len(labels)))

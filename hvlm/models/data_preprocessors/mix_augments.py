"""MixUp and CutMix as batch augments with soft targets."""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import MODELS


def _one_hot(data_samples: List, num_classes: int, device) -> Tensor:
    """``[B, K]`` targets: a sample's ``gt_score`` if set, else the one-hot
    of its ``gt_label``."""
    rows = []
    for s in data_samples:
        if 'gt_score' in s:
            rows.append(s.gt_score.to(device).float())
        else:
            label = int(s.gt_label)
            if not 0 <= label < num_classes:
                raise ValueError(f'gt_label={label} outside [0, '
                                 f'{num_classes}) in a mixed batch')
            rows.append(F.one_hot(torch.tensor(label, device=device),
                                  num_classes).float())
    return torch.stack(rows)


def _set_scores(data_samples: List, scores: Tensor) -> None:
    for s, score in zip(data_samples, scores):
        s.set_field(score, 'gt_score')


class _Mix:
    """Shared parts: a Beta(alpha, alpha) draw, a permutation, and the
    mixed (unsmoothed) soft targets ``lam * t + (1 - lam) * t[perm]``;
    label smoothing stays the loss's job."""

    def __init__(self, alpha: float, num_classes: Optional[int]) -> None:
        if alpha <= 0:
            raise ValueError(f'alpha={alpha} must be > 0')
        if num_classes is not None and num_classes < 1:
            raise ValueError(f'num_classes={num_classes} must be >= 1')
        self.alpha, self.num_classes = alpha, num_classes

    def draw(self, batch: int) -> Tuple[float, Tensor]:
        lam = float(np.random.beta(self.alpha, self.alpha))
        return lam, torch.randperm(batch)

    def targets(self, data_samples, lam, perm, device) -> Tensor:
        if self.num_classes is None:
            raise ValueError(f'{type(self).__name__}.num_classes is not set '
                             '(an ImageClassifier sets it from its head)')
        t = _one_hot(data_samples, self.num_classes, device)
        return lam * t + (1 - lam) * t[perm.to(device)]


@MODELS.register_module()
class MixUp(_Mix):
    """``x = lam x + (1 - lam) x[perm]`` with ``lam ~ Beta(alpha,
    alpha)`` (Zhang et al., 2018), one ``lam`` per batch.

    Args:
        alpha (float): Beta parameter (0.8 in the recipe).
        num_classes (int, optional): Number of classes of the soft
            targets; ``None``: the classifier's head's.
    """

    def __init__(self, alpha: float = 0.8,
                 num_classes: Optional[int] = None) -> None:
        super().__init__(alpha, num_classes)

    def __call__(self, inputs: Tensor, data_samples: List,
                 lam: Optional[float] = None,
                 perm: Optional[Tensor] = None) -> Tuple[Tensor, List]:
        drawn = self.draw(inputs.shape[0])
        lam = drawn[0] if lam is None else lam
        perm = drawn[1] if perm is None else perm
        mixed = lam * inputs + (1 - lam) * inputs[perm.to(inputs.device)]
        _set_scores(data_samples,
                    self.targets(data_samples, lam, perm, inputs.device))
        return mixed, data_samples


@MODELS.register_module()
class CutMix(_Mix):
    """Paste a box of ``x[perm]`` into ``x`` (Yun et al., 2019): the box
    has area ``(1 - lam)`` of the image (``lam ~ Beta(alpha, alpha)``),
    its centre uniform, clipped at the border; the targets' ``lam`` is then
    the fraction of pixels actually kept.

    Args:
        alpha (float): Beta parameter (1.0 in the recipe).
        num_classes (int, optional): Number of classes of the soft
            targets; ``None``: the classifier's head's.
    """

    def __init__(self, alpha: float = 1.0,
                 num_classes: Optional[int] = None) -> None:
        super().__init__(alpha, num_classes)

    @staticmethod
    def box(height: int, width: int, lam: float) -> Tuple[int, int, int,
                                                          int]:
        """``(y0, y1, x0, x1)`` of a box of area about ``(1 - lam)``."""
        cut = np.sqrt(1 - lam)
        h, w = int(height * cut), int(width * cut)
        cy, cx = np.random.randint(height), np.random.randint(width)
        return (int(np.clip(cy - h // 2, 0, height)),
                int(np.clip(cy + h // 2, 0, height)),
                int(np.clip(cx - w // 2, 0, width)),
                int(np.clip(cx + w // 2, 0, width)))

    def __call__(self, inputs: Tensor, data_samples: List,
                 lam: Optional[float] = None,
                 perm: Optional[Tensor] = None) -> Tuple[Tensor, List]:
        drawn = self.draw(inputs.shape[0])
        lam = drawn[0] if lam is None else lam
        perm = drawn[1] if perm is None else perm
        H, W = inputs.shape[-2:]
        y0, y1, x0, x1 = self.box(H, W, lam)
        mixed = inputs.clone()
        mixed[..., y0:y1, x0:x1] = inputs[perm.to(inputs.device)][...,
                                                                   y0:y1,
                                                                   x0:x1]
        kept = 1 - (y1 - y0) * (x1 - x0) / (H * W)
        _set_scores(data_samples,
                    self.targets(data_samples, kept, perm, inputs.device))
        return mixed, data_samples


@MODELS.register_module()
class RandomBatchAugment:
    """Apply one of ``augments`` to a batch with probabilities ``probs``
    (their remainder to 1: none), as timm switches between MixUp and
    CutMix. A batch left unmixed keeps hard labels.

    Args:
        augments (list[dict]): ``MODELS`` configs of batch augments.
        probs (Sequence[float]): Probability of each; sum <= 1.
    """

    def __init__(self, augments: List[dict],
                 probs: Optional[Sequence[float]] = None) -> None:
        self.augments = [MODELS.build(a) if isinstance(a, dict) else a
                         for a in augments]
        if probs is None:
            probs = [1 / len(self.augments)] * len(self.augments)
        if len(probs) != len(self.augments) or sum(probs) > 1 + 1e-6 or \
                min(probs) < 0:
            raise ValueError(f'probs={list(probs)} must give one '
                             'probability per augment, summing to <= 1')
        self.probs = list(probs)

    def __call__(self, inputs: Tensor,
                 data_samples: List) -> Tuple[Tensor, List]:
        p = np.array(self.probs + [max(0., 1 - sum(self.probs))])
        choice = np.random.choice(len(self.augments) + 1, p=p / p.sum())
        if choice == len(self.augments):
            return inputs, data_samples
        return self.augments[choice](inputs, data_samples)

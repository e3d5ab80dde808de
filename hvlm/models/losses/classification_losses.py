"""Classification losses on hard or soft (mixed) targets: cross-entropy
with label smoothing and class weights, focal loss, and their 0.5/0.5
combination used by the fine-tuning recipe."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import MODELS


def to_soft_targets(target: Tensor, num_classes: int) -> Tensor:
    """``[B]`` class indices -> one-hot ``[B, K]``; ``[B, K]`` unchanged."""
    if target.dim() == 1:
        return F.one_hot(target.long(), num_classes).float()
    if target.shape[-1] != num_classes:
        raise ValueError(f'soft targets have {target.shape[-1]} classes, '
                         f'the logits {num_classes}')
    return target.float()


def smooth(target: Tensor, eps: float) -> Tensor:
    """Label smoothing of soft targets ``[B, K]``: ``(1 - eps) t + eps/K``.

    MixUp/CutMix produce *unsmoothed* mixtures, and the loss smooths once
    here; smoothing in the mixer too (timm's default) would smooth twice.
    """
    if eps == 0:
        return target
    return target * (1 - eps) + eps / target.shape[-1]


def _class_weight(weight: Optional[Sequence[float]],
                  num_classes: int, ref: Tensor) -> Tensor:
    if weight is None:
        return ref.new_ones(num_classes)
    weight = ref.new_tensor(weight)
    if weight.numel() != num_classes:
        raise ValueError(f'class_weight has {weight.numel()} entries, the '
                         f'logits {num_classes} classes')
    return weight


def soft_cross_entropy(logits: Tensor, target: Tensor,
                       label_smoothing: float = 0.,
                       class_weight: Optional[Sequence[float]] = None
                       ) -> Tensor:
    """``sum_i sum_k w_k t_ik (-log p_ik) / sum_i sum_k w_k t_ik`` with
    ``t`` the (smoothed) targets: for hard targets exactly
    ``F.cross_entropy(weight=w, label_smoothing=eps)``."""
    K = logits.shape[-1]
    t = smooth(to_soft_targets(target, K), label_smoothing)
    w = _class_weight(class_weight, K, logits)
    logp = F.log_softmax(logits.float(), dim=-1)
    if class_weight is None:
        return -(t * logp).sum(-1).mean()
    # torch's normaliser: the weight of each sample's true class
    hard = to_soft_targets(target, K)
    return -(t * logp * w).sum() / (hard * w).sum()


def focal_loss(logits: Tensor, target: Tensor, gamma: float = 2.,
               alpha: Optional[Sequence[float]] = None) -> Tensor:
    """``mean_i sum_k a_k t_ik (1 - p_ik)^gamma (-log p_ik)`` (Lin et al.,
    2017, multi-class, with soft targets ``t``); for a hard target this is
    ``a_y (1 - p_y)^gamma CE`` and ``gamma = 0`` gives cross-entropy."""
    K = logits.shape[-1]
    t = to_soft_targets(target, K)
    a = _class_weight(alpha, K, logits)
    logp = F.log_softmax(logits.float(), dim=-1)
    modulator = (1 - logp.exp()).clamp_min(0).pow(gamma)
    return -(a * t * modulator * logp).sum(-1).mean()


@MODELS.register_module()
class SoftCrossEntropyLoss(nn.Module):
    """Cross-entropy on hard or soft targets (:func:`soft_cross_entropy`).

    Args:
        label_smoothing (float): ``eps`` applied once, here.
        class_weight (Sequence[float], optional): Per-class weights for
            imbalanced data (e.g. inverse class frequency).
        loss_weight (float): Multiplier of the loss.
    """

    def __init__(self, label_smoothing: float = 0.,
                 class_weight: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f'label_smoothing={label_smoothing} must be in '
                             '[0, 1)')
        self.label_smoothing = label_smoothing
        self.class_weight = class_weight
        self.loss_weight = loss_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * soft_cross_entropy(
            logits, target, self.label_smoothing, self.class_weight)


@MODELS.register_module()
class FocalLoss(nn.Module):
    """Focal loss (:func:`focal_loss`).

    Args:
        gamma (float): Focusing parameter (2 in the recipe).
        alpha (Sequence[float], optional): Per-class weights.
        loss_weight (float): Multiplier of the loss.
    """

    def __init__(self, gamma: float = 2.,
                 alpha: Optional[Sequence[float]] = None,
                 loss_weight: float = 1.) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f'gamma={gamma} must be >= 0')
        self.gamma, self.alpha, self.loss_weight = gamma, alpha, loss_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.loss_weight * focal_loss(logits, target, self.gamma,
                                             self.alpha)


@MODELS.register_module()
class FocalSmoothedCELoss(nn.Module):
    """The recipe's combined loss, ``focal_weight * focal(t) +
    ce_weight * CE(smooth(t))``: focal loss on the (mixed) targets as they
    are, cross-entropy on the smoothed targets, so label smoothing is
    applied once, in the CE term only.

    Args:
        gamma (float): Focal loss gamma.
        alpha (Sequence[float], optional): Focal loss per-class weights.
        label_smoothing (float): Smoothing of the CE term.
        class_weight (Sequence[float], optional): CE per-class weights.
        focal_weight (float): Weight of the focal term.
        ce_weight (float): Weight of the CE term.
    """

    def __init__(self, gamma: float = 2.,
                 alpha: Optional[Sequence[float]] = None,
                 label_smoothing: float = 0.1,
                 class_weight: Optional[Sequence[float]] = None,
                 focal_weight: float = 0.5,
                 ce_weight: float = 0.5) -> None:
        super().__init__()
        self.focal = FocalLoss(gamma, alpha, focal_weight)
        self.ce = SoftCrossEntropyLoss(label_smoothing, class_weight,
                                       ce_weight)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.focal(logits, target) + self.ce(logits, target)


def inverse_frequency_weights(counts: Sequence[int]) -> list:
    """Class weights ``N / (K' * n_k)`` from the per-class counts ``n_k``
    (``N`` samples, ``K'`` classes with samples), so the weights average 1
    over the samples; a class without samples gets 0."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0,
                          counts.sum() / (present * counts.clamp_min(1)),
                          torch.zeros_like(counts))
    return weights.tolist()

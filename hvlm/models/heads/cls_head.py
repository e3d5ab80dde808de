"""A linear classification head on pooled features."""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import HEADS, MODELS
from .base_head import BaseHead


@HEADS.register_module()
class ClsHead(BaseHead):
    """Dropout then a linear layer on pooled features ``[B, C]``.

    Targets come from the data samples: ``gt_score`` ``[K]`` (soft, set by
    MixUp/CutMix) when every sample has one, otherwise ``gt_label``.
    ``predict`` writes ``pred_score`` (softmax probabilities, what TTA
    averages) and ``pred_label``.

    Args:
        num_classes (int): Number of classes ``K``.
        in_channels (int): Width ``C`` of the features.
        loss (dict): ``MODELS`` config of the loss, called as
            ``loss(logits, target)`` with ``target`` ``[B]`` or ``[B, K]``.
        dropout (float): Dropout before the linear layer.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 loss: dict = dict(type='SoftCrossEntropyLoss'),
                 dropout: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_classes < 1:
            raise ValueError(f'num_classes={num_classes} must be a positive '
                             'integer')
        self.num_classes = num_classes
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)
        self.loss_module = MODELS.build(loss)

    def forward(self, feats: Tensor) -> Tensor:
        """Logits ``[B, K]``."""
        return self.fc(self.dropout(feats))

    def targets(self, data_samples: List) -> Tensor:
        """Soft ``[B, K]`` when every sample has ``gt_score``, else hard
        ``[B]``."""
        if data_samples and all('gt_score' in s for s in data_samples):
            return torch.stack([s.gt_score for s in data_samples])
        labels = torch.stack([s.gt_label for s in data_samples]).view(-1)
        if (labels < 0).any() or (labels >= self.num_classes).any():
            raise ValueError(f'gt_label {labels.tolist()} outside [0, '
                             f'{self.num_classes}); an unlabelled dataset '
                             '(labelled=False) cannot train a classifier')
        return labels

    def loss(self, feats: Tensor, data_samples: List) -> Dict[str, Tensor]:
        logits = self(feats)
        target = self.targets(data_samples).to(logits.device)
        return dict(loss_cls=self.loss_module(logits, target))

    def predict(self, feats: Tensor, data_samples: List) -> List:
        scores = self(feats).float().softmax(-1)  # [B, K]
        for sample, score in zip(data_samples, scores):
            sample.set_field(score.detach(), 'pred_score')
            sample.set_field(score.argmax().detach(), 'pred_label')
        return data_samples

"""Run several task heads on the same features."""
from typing import Dict, Optional

import torch.nn as nn
from torch import Tensor

from hvlm.registry import HEADS
from hvlm.structures import SampleList
from hvlm.structures import VideoFeatures
from .base_head import BaseHead

# The original HierarchicalVLM's loss weights for its three tasks.
DEFAULT_TASK_WEIGHTS = dict(
    action_detection=0.33, video_qa=0.33, video_captioning=0.34)


@HEADS.register_module()
class MultiTaskHead(BaseHead):
    """A named set of heads whose losses are weighted and summed.

    Each sub-head's loss key ``loss_<what>`` becomes ``loss_<task>_<what>``
    (other keys become ``<task>_<key>``), so logs tell the tasks apart and
    mmengine still sums every key that contains ``loss``. Only those loss
    keys are multiplied by the task's weight; logged extras are not.

    A batch may mix videos annotated for different tasks: every head
    scores only the samples that carry its labels (``gt_frame_labels`` /
    ``gt_segments``, ``gt_qa``, ``gt_captions``) and returns 0, connected to
    the graph, when none does, so a task missing from a batch adds nothing
    and never gives NaN. Each head averages over its labelled items (frames,
    answers, words) of the global batch, all ranks together
    (:func:`~hvlm.models.heads.base_head.global_mean`), so N processes with
    batch b train like one process with batch N*b.

    Args:
        heads (dict): ``task name -> head config`` (``HEADS``).
        task_weights (dict, optional): ``task name -> weight``; a task
            without a weight gets its entry of ``DEFAULT_TASK_WEIGHTS``
            (the original's 0.33 / 0.33 / 0.34 for ``action_detection`` /
            ``video_qa`` / ``video_captioning``), any other task 1.0.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 heads: Dict[str, dict],
                 task_weights: Optional[Dict[str, float]] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not heads:
            raise ValueError('heads must name at least one task, e.g. '
                             "heads=dict(action_detection=dict(type="
                             "'ActionDetectionHead', in_channels=192))")
        task_weights = dict(task_weights or {})
        unknown = sorted(set(task_weights) - set(heads))
        if unknown:
            raise ValueError(f'task_weights has weights for unknown tasks '
                             f'{unknown}; the tasks are {sorted(heads)}')
        for task, weight in task_weights.items():
            if weight < 0:
                raise ValueError(f'task_weights[{task!r}]={weight} must be '
                                 '>= 0')
        self.heads = nn.ModuleDict(
            {task: HEADS.build(cfg)
             for task, cfg in heads.items()})
        self.task_weights = {
            task: float(
                task_weights.get(task, DEFAULT_TASK_WEIGHTS.get(task, 1.0)))
            for task in heads
        }

    def forward(self, feats: VideoFeatures) -> Dict[str, object]:
        """``task -> raw output`` of every head."""
        return {task: head(feats) for task, head in self.heads.items()}

    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        losses = {}
        for task, head in self.heads.items():
            weight = self.task_weights[task]
            for key, value in head.loss(feats, data_samples).items():
                if key.startswith('loss_'):
                    losses[f'loss_{task}_{key[len("loss_"):]}'] = \
                        value * weight
                elif 'loss' in key:
                    losses[f'loss_{task}_{key}'] = value * weight
                else:
                    losses[f'{task}_{key}'] = value
        return losses

    def predict(self, feats: VideoFeatures,
                data_samples: SampleList) -> SampleList:
        for head in self.heads.values():
            data_samples = head.predict(feats, data_samples)
        return data_samples

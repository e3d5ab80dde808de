"""Progressive token merging: switch the merger's cues on by epoch."""
from typing import Dict

import torch.nn as nn

from hvlm.registry import HOOKS
from .curriculum_hook import EpochStageHook


@HOOKS.register_module()
class ProgressiveMergingHook(EpochStageHook):
    """Start with plain similarity merging, then add motion, then saliency.

    The original HierarchicalVLM's ``training.progressive.token_merging``:
    content cues steer which tokens merge, and they are most useful once
    the features they compete with are trained. With both cues off,
    ``AdaptiveTokenMerger`` merges like ToMe (similarity only); each stage
    switches ``motion`` and ``saliency`` on or off (``set_cues``) on every
    merger that supports it. A cue can only be switched on if the merger
    was built with it, so configure the merger with both cues enabled and
    let the first stage switch them off. The stage in force is logged as
    ``train/merging_motion`` and ``train/merging_saliency`` (1 on, 0 off).

    ``tools/test.py`` runs no training hook: the merger's configured cues
    apply there, which is the last stage when that stage has both on.

    Args:
        stages (Sequence[dict]): ``dict(epochs=int, motion=bool,
            saliency=bool)``, e.g. the original's ``[dict(epochs=20,
            motion=False, saliency=False), dict(epochs=30, motion=True,
            saliency=False), dict(epochs=50, motion=True, saliency=True)]``.
    """

    method = 'set_cues'
    stage_keys = ('motion', 'saliency')
    example = 'dict(epochs=20, motion=False, saliency=False)'

    def check_stage(self, i: int, stage: dict) -> dict:
        for key in self.stage_keys:
            if not isinstance(stage[key], bool):
                raise ValueError(
                    f'ProgressiveMergingHook: stages[{i}].{key}='
                    f'{stage[key]!r} must be True or False')
        return {key: stage[key] for key in self.stage_keys}

    def apply_stage(self, module: nn.Module, stage: dict) -> None:
        module.set_cues(motion=stage['motion'], saliency=stage['saliency'])

    def stage_scalars(self, stage: dict) -> Dict[str, float]:
        return {
            'train/merging_motion': float(stage['motion']),
            'train/merging_saliency': float(stage['saliency'])
        }

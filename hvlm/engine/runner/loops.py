"""mmengine's validation and test loops, registered under the same names in
hvlm's scope, with one difference: a batch whose every video was skipped
(unreadable, missing, too short: ``video_collate`` drops them and the
models answer ``[]``) is passed over instead of crashing mmengine 0.10's
loss bookkeeping (``outputs[-1]`` on an empty list). The iteration hooks
still run, so ``SkippedVideoHook`` counts and names those videos."""
from typing import Sequence

import torch
from mmengine.runner import TestLoop as MMEngineTestLoop
from mmengine.runner import ValLoop as MMEngineValLoop
from mmengine.runner.amp import autocast
from mmengine.runner.loops import _update_losses

from hvlm.registry import LOOPS


def _run_iter(loop, stage: str, idx, data_batch: Sequence[dict]) -> None:
    runner = loop.runner
    runner.call_hook(f'before_{stage}_iter', batch_idx=idx,
                     data_batch=data_batch)
    with autocast(enabled=loop.fp16):
        outputs = getattr(runner.model, f'{stage}_step')(data_batch)
    if len(outputs):
        losses = getattr(loop, f'{stage}_loss')
        outputs, losses = _update_losses(outputs, losses)
        setattr(loop, f'{stage}_loss', losses)
        loop.evaluator.process(data_samples=outputs, data_batch=data_batch)
    runner.call_hook(f'after_{stage}_iter', batch_idx=idx,
                     data_batch=data_batch, outputs=outputs)


@LOOPS.register_module(name='ValLoop')
class ValLoop(MMEngineValLoop):
    """mmengine's ``ValLoop``; a batch of skipped videos only is passed
    over (see the module docstring)."""

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        _run_iter(self, 'val', idx, data_batch)


@LOOPS.register_module(name='TestLoop')
class TestLoop(MMEngineTestLoop):
    """mmengine's ``TestLoop``; a batch of skipped videos only is passed
    over (see the module docstring)."""

    @torch.no_grad()
    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        _run_iter(self, 'test', idx, data_batch)

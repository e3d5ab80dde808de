"""Curriculum learning: the token merger's compression ratio by epoch."""
import logging
import numbers
from typing import Dict, List, Optional, Sequence, Tuple

import torch.nn as nn
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.runner import IterBasedTrainLoop

from hvlm.registry import HOOKS


class EpochStageHook(Hook):
    """Drive a model setting through consecutive stages of whole epochs.

    ``stages`` is a list of dicts, each with ``epochs`` (how many epochs the
    stage lasts) and the values of the stage. Stage ``i`` covers the epochs
    after the first ``i`` stages; once every stage has run, the last one's
    values remain. The stage of the coming epoch is applied in
    ``before_train_epoch`` from ``runner.epoch`` alone, so a run resumed at
    epoch ``k`` gets the stage of epoch ``k`` without any saved state.

    Subclasses name the method the stages call (``method``), the keys every
    stage must give (``stage_keys``), and check and apply one stage.
    Every module of the model (unwrapped from DDP) that has ``method`` is
    driven; all stages are tried on each of them before training starts, so
    a stage that a module refuses fails at once rather than epochs later.

    Args:
        stages (Sequence[dict]): ``dict(epochs=int, <stage_keys>...)``.
    """

    method: str = ''
    stage_keys: Tuple[str, ...] = ()
    example: str = ''

    def __init__(self, stages: Sequence[dict]) -> None:
        name = type(self).__name__
        if not isinstance(stages, (list, tuple)) or not stages:
            raise ValueError(f'{name}: stages must be a non-empty list such '
                             f'as [{self.example}, ...], got {stages!r}')
        keys = {'epochs', *self.stage_keys}
        self.stages: List[dict] = []
        for i, stage in enumerate(stages):
            if not isinstance(stage, dict):
                raise ValueError(f'{name}: stages[{i}]={stage!r} must be a '
                                 f'dict such as {self.example}')
            missing = sorted(keys - set(stage))
            unknown = sorted(set(stage) - keys)
            if missing or unknown:
                raise ValueError(
                    f'{name}: stages[{i}]={dict(stage)} '
                    + (f'lacks {missing}' if missing else '')
                    + (' and ' if missing and unknown else '')
                    + (f'has unknown keys {unknown}' if unknown else '')
                    + f'; each stage is {sorted(keys)}, e.g. {self.example}')
            epochs = stage['epochs']
            if isinstance(epochs, bool) or not isinstance(
                    epochs, numbers.Integral) or epochs < 1:
                raise ValueError(f'{name}: stages[{i}].epochs={epochs!r} '
                                 'must be a positive integer')
            self.stages.append(
                dict(self.check_stage(i, stage), epochs=int(epochs)))
        self._targets: Optional[List[nn.Module]] = None
        self._current: Optional[int] = None

    # ------------------------------------------------------------------
    # to be defined by each strategy
    # ------------------------------------------------------------------
    def check_stage(self, i: int, stage: dict) -> dict:
        """Validate ``stages[i]``; return its values (without ``epochs``)."""
        raise NotImplementedError

    def apply_stage(self, module: nn.Module, stage: dict) -> None:
        """Set ``stage``'s values on one driven module."""
        raise NotImplementedError

    def stage_scalars(self, stage: dict) -> Dict[str, float]:
        """Scalars (``train/...``) that record ``stage`` in the log."""
        raise NotImplementedError

    def describe(self, stage: dict) -> str:
        """``stage``'s values for the log, e.g. ``compression_ratio=0.6``."""
        return ', '.join(f'{key}={stage[key]}' for key in self.stage_keys)

    # ------------------------------------------------------------------
    # stages
    # ------------------------------------------------------------------
    def stage_at(self, epoch: int) -> int:
        """Index of the stage that (0-based) ``epoch`` falls in; the last
        stage for any epoch after all of them."""
        end = 0
        for i, stage in enumerate(self.stages):
            end += stage['epochs']
            if epoch < end:
                return i
        return len(self.stages) - 1

    def _epoch_range(self, i: int) -> str:
        start = sum(s['epochs'] for s in self.stages[:i]) + 1
        end = start + self.stages[i]['epochs'] - 1
        span = f'epoch {start}' if start == end else \
            f'epochs {start}-{end}'
        return span + (' and after' if i == len(self.stages) - 1 else '')

    def bind(self, model: nn.Module) -> List[nn.Module]:
        """Find the modules of ``model`` that have ``method`` and try every
        stage on each of them.

        Returns:
            list[nn.Module]: The modules the stages will drive.

        Raises:
            RuntimeError: if no module of ``model`` has ``method``.
            ValueError: if a module refuses a stage, naming the stage, the
                module's path and the module's reason.
        """
        name = type(self).__name__
        if is_model_wrapper(model):
            model = model.module
        found = [(path, m) for path, m in model.named_modules()
                 if callable(getattr(m, self.method, None))]
        if not found:
            mergers = sorted({
                type(m).__name__
                for m in model.modules() if 'Merger' in type(m).__name__
            })
            raise RuntimeError(
                f'{name}: {type(model).__name__} has no module with '
                f'{self.method}() for the stages to drive (its mergers: '
                f'{mergers or "none"}). Use a merger that supports it, e.g. '
                "model.backbone.merger=dict(type='AdaptiveTokenMerger') as "
                'in configs/token_merging/hier_sports_adaptive.py')
        for i, stage in enumerate(self.stages):
            for path, module in found:
                try:
                    self.apply_stage(module, stage)
                except ValueError as err:
                    raise ValueError(
                        f'{name}: stages[{i}] ({self.describe(stage)}) is '
                        f'refused by {type(module).__name__} at '
                        f'model.{path}: {err}') from err
        return [m for _, m in found]

    def _apply_epoch(self, runner) -> None:
        if self._targets is None:
            self._targets = self.bind(runner.model)
        i = self.stage_at(runner.epoch)
        stage = self.stages[i]
        for module in self._targets:
            self.apply_stage(module, stage)
        for key, value in self.stage_scalars(stage).items():
            runner.message_hub.update_scalar(key, value)
        if i != self._current:
            runner.logger.info(
                f'{type(self).__name__}: epoch {runner.epoch + 1} is in '
                f'stage {i + 1}/{len(self.stages)} ({self._epoch_range(i)}):'
                f' {self.describe(stage)}')
            self._current = i

    # ------------------------------------------------------------------
    # hook points
    # ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        if isinstance(runner.train_loop, IterBasedTrainLoop):
            raise TypeError(
                f'{type(self).__name__} changes stage at epoch boundaries; '
                'it needs an epoch-based train_cfg (EpochBasedTrainLoop), '
                'got IterBasedTrainLoop')
        self._targets = self.bind(runner.model)
        self._current = None
        self._apply_epoch(runner)

    def before_train_epoch(self, runner) -> None:
        self._apply_epoch(runner)


@HOOKS.register_module()
class CurriculumHook(EpochStageHook):
    """Easy to hard: keep many tokens first, then compress more and more.

    The original HierarchicalVLM's ``training.curriculum.stages``: early
    epochs, while the features are still poor, see most of each clip's
    tokens; later epochs learn to work from fewer. Each stage sets the
    share of tokens kept (``set_compression_ratio``) on every token merger
    that supports it (``AdaptiveTokenMerger``); the ratio must lie within
    each merger's ``[min_compression_ratio, max_compression_ratio]``. The
    ratio in force is logged as ``train/compression_ratio``.

    Training and its validation run at the stage's ratio; ``tools/test.py``
    runs no training hook, so the merger's configured
    ``target_compression_ratio`` applies there: set it to the last stage's
    ratio (a warning says when they differ).

    Args:
        stages (Sequence[dict]): ``dict(epochs=int,
            compression_ratio=float)``, e.g. the original's
            ``[dict(epochs=20, compression_ratio=0.8), dict(epochs=30,
            compression_ratio=0.6), dict(epochs=50, compression_ratio=0.4)]``.
    """

    method = 'set_compression_ratio'
    stage_keys = ('compression_ratio', )
    example = 'dict(epochs=20, compression_ratio=0.8)'

    def check_stage(self, i: int, stage: dict) -> dict:
        ratio = stage['compression_ratio']
        if isinstance(ratio, bool) or not isinstance(
                ratio, numbers.Real) or not 0 < ratio <= 1:
            raise ValueError(
                f'CurriculumHook: stages[{i}].compression_ratio={ratio!r} '
                'must be a number in (0, 1]: the share of tokens kept')
        return dict(compression_ratio=float(ratio))

    def apply_stage(self, module: nn.Module, stage: dict) -> None:
        module.set_compression_ratio(stage['compression_ratio'])

    def stage_scalars(self, stage: dict) -> Dict[str, float]:
        return {'train/compression_ratio': stage['compression_ratio']}

    def bind(self, model: nn.Module) -> List[nn.Module]:
        configured = {
            m.compression_ratio
            for m in (model.module if is_model_wrapper(model) else
                      model).modules()
            if callable(getattr(m, self.method, None))
            and hasattr(m, 'compression_ratio')
        }
        targets = super().bind(model)
        last = self.stages[-1]['compression_ratio']
        if configured - {last}:
            print_log(
                f'CurriculumHook: the mergers are configured with '
                f'target_compression_ratio {sorted(configured)} but the '
                f'curriculum ends at {last}; tools/test.py (no curriculum) '
                'will evaluate at the configured ratio. Set '
                f'target_compression_ratio={last} to test as trained.',
                logger='current',
                level=logging.WARNING)
        return targets

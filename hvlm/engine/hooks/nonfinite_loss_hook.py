"""Catch a NaN or Inf loss in the step that produced it."""
from typing import Dict, Optional

import torch
import torch.distributed as dist
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from hvlm.registry import HOOKS


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Skip, or stop at, an optimisation step whose loss is NaN or Inf.

    Without it a single NaN batch writes NaN into every weight and the run
    carries on uselessly. The check sits in the optimizer wrapper's
    ``update_params`` (the one place both the plain and the DDP training
    steps go through): the total loss is tested before ``backward``; when it
    is not finite, no rank steps (the flag is agreed across ranks, otherwise
    DDP would hang waiting for the ranks that skipped), the gradients are
    cleared, and the loss terms at fault are named, read from the model's
    last ``parse_losses`` call.

    Args:
        policy: ``'skip'`` (warn, count in the log as
            ``train/nonfinite_skipped``, go on) or ``'stop'`` (raise
            ``FloatingPointError`` naming the iteration and the terms).
        max_consecutive: Under ``'skip'``, stop after this many consecutive
            skipped steps: the run has diverged rather than met a bad batch.
    """

    priority = 'VERY_HIGH'

    def __init__(self, policy: str = 'skip', max_consecutive: int = 20):
        if policy not in ('skip', 'stop'):
            raise ValueError(f"policy={policy!r} must be 'skip' or 'stop'")
        if max_consecutive < 1:
            raise ValueError(
                f'max_consecutive={max_consecutive} must be at least 1')
        self.policy = policy
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        self._last_losses: Optional[Dict[str, torch.Tensor]] = None

    def before_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        self.install(model, runner.optim_wrapper, runner)

    def install(self, model, optim_wrapper, runner=None) -> None:
        """Wrap ``model.parse_losses`` and ``optim_wrapper.update_params``
        (on these instances only)."""
        parse_losses = model.parse_losses
        update_params = optim_wrapper.update_params

        def remembering_parse_losses(losses):
            self._last_losses = losses
            return parse_losses(losses)

        def guarded_update_params(loss, *args, **kwargs):
            if self._all_finite(loss):
                self.consecutive = 0
                return update_params(loss, *args, **kwargs)
            self._handle(optim_wrapper, runner)

        model.parse_losses = remembering_parse_losses
        optim_wrapper.update_params = guarded_update_params

    @staticmethod
    def _all_finite(loss: torch.Tensor) -> bool:
        bad = (~torch.isfinite(loss.detach())).any().to(torch.int32)
        if get_world_size() > 1:
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return not bool(bad)

    def _describe_terms(self) -> str:
        if not self._last_losses:
            return 'loss'
        parts = []
        for name, value in self._last_losses.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            total = sum(v.detach().float().mean() for v in values)
            parts.append(f'{name}={float(total):.4g}')
        return ', '.join(parts)

    def _handle(self, optim_wrapper, runner) -> None:
        optim_wrapper.zero_grad()
        iteration = runner.iter + 1 if runner is not None else None
        where = (f'iteration {iteration}'
                 if iteration is not None else 'this step')
        terms = self._describe_terms()
        self.skipped += 1
        self.consecutive += 1
        if self.policy == 'stop' or self.consecutive > self.max_consecutive:
            reason = ('' if self.policy == 'stop' else
                      f' ({self.consecutive} consecutive steps; the run has '
                      'diverged: lower the learning rate or check the data)')
            raise FloatingPointError(
                f'non-finite loss at {where}: {terms}{reason}')
        if runner is not None:
            runner.message_hub.update_scalar('train/nonfinite_skipped',
                                             self.skipped)
            runner.logger.warning(
                f'non-finite loss at {where}: {terms}; the step is skipped '
                f'({self.skipped} skipped so far)')

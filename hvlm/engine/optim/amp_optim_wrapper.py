"""Mixed precision that works where the user runs: CPU or GPU."""
import warnings
from contextlib import contextmanager
from typing import Union

import torch
import torch.nn as nn
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from hvlm.registry import OPTIM_WRAPPERS
from hvlm.utils.cpu_amp import SLOWDOWN_LIMIT, probe_cpu_bf16


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` that also runs on CPU.

    mmengine's wrapper asserts a GPU, builds a CUDA ``GradScaler`` and its
    ``autocast`` refuses float16 on CPU. On CPU this one autocasts to
    bfloat16 by default (a real speedup on CPUs with AMX) and skips loss
    scaling, which bfloat16 does not need: it has float32's exponent range.
    A config that names this wrapper gets bfloat16 even on a CPU that runs
    it slowly (with a warning that gives the measured speeds);
    ``--amp`` instead falls back to float32 there (:mod:`hvlm.utils.cpu_amp`).
    ``dtype='float16'`` on CPU autocasts to float16 with a CPU
    ``torch.amp.GradScaler``, as on a GPU: a step whose scaled gradients
    overflow is skipped and the scale lowered (halved by default). That is
    slower than bfloat16 on CPU; it is there to run and test a GPU recipe's
    numerics on a machine without one. On GPU it behaves exactly like
    mmengine's (float16 with a dynamic ``GradScaler`` unless
    ``dtype='bfloat16'``).

    A gradient overflow is the scaler's business, not a non-finite *loss*:
    ``NonFiniteLossHook`` looks at the loss before ``backward`` and lets
    such a step through to the scaler, which skips it.

    It is registered under mmengine's name in the ``hvlm`` scope, so
    ``optim_wrapper=dict(type='AmpOptimWrapper')`` and ``--amp`` work on any
    device; ``type='mmengine.AmpOptimWrapper'`` still reaches the original.

    Args:
        loss_scale: As in mmengine (``'dynamic'``, a float for a static
            scale, or ``GradScaler`` arguments); used on CPU only with
            float16.
        dtype: ``'float16'``, ``'bfloat16'`` or None (float16 on GPU,
            bfloat16 on CPU).
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 **kwargs) -> None:
        self._on_cpu = get_device() == 'cpu'
        if not self._on_cpu:
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16, torch.float16):
            raise ValueError(
                f'AmpOptimWrapper: dtype={dtype} is not supported on CPU; '
                'use None or "bfloat16" (CPU autocast), or "float16" (with '
                'loss scaling)')
        OptimWrapper.__init__(self, **kwargs)
        self.cast_dtype = dtype or torch.bfloat16
        if self.cast_dtype == torch.bfloat16:
            probe = probe_cpu_bf16()
            if not probe.bf16_pays_off:
                warnings.warn(
                    f'AmpOptimWrapper: {probe.describe()}: bfloat16 autocast '
                    f'(more than {SLOWDOWN_LIMIT:g}x slower) will slow this '
                    'run down; `--amp` alone would have fallen back to '
                    'float32 here. Remove AmpOptimWrapper from the config to '
                    'train in float32.')
        self._scale_update_param = None
        self.loss_scaler = None
        if self.cast_dtype == torch.float16:
            self.loss_scaler = self._cpu_scaler(loss_scale)

    def _cpu_scaler(self, loss_scale: Union[str, float, dict]
                    ) -> torch.amp.GradScaler:
        """A CPU ``GradScaler`` from mmengine's ``loss_scale`` forms."""
        if loss_scale == 'dynamic':
            return torch.amp.GradScaler('cpu')
        if isinstance(loss_scale, float):
            # a static scale: every update sets it back to this value
            self._scale_update_param = loss_scale
            return torch.amp.GradScaler('cpu', init_scale=loss_scale)
        if isinstance(loss_scale, dict):
            return torch.amp.GradScaler('cpu', **loss_scale)
        raise TypeError(f"loss_scale={loss_scale!r} must be 'dynamic', a "
                        'float or a dict of GradScaler arguments')

    @contextmanager
    def optim_context(self, model: nn.Module):
        if not self._on_cpu:
            with super().optim_context(model):
                yield
            return
        with OptimWrapper.optim_context(self, model), torch.autocast(
                'cpu', dtype=self.cast_dtype):
            yield

    def backward(self, loss: torch.Tensor, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.backward(self, loss, **kwargs)
        else:
            super().backward(loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.loss_scaler is None:
            OptimWrapper.step(self, **kwargs)
        else:
            super().step(**kwargs)

    def state_dict(self) -> dict:
        if self.loss_scaler is None:
            return OptimWrapper.state_dict(self)
        return super().state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        if self.loss_scaler is None:
            # a checkpoint written with float16 carries a scaler state: drop it
            state_dict = {
                k: v
                for k, v in state_dict.items() if k != 'loss_scaler'
            }
        super().load_state_dict(state_dict)

"""Mixed precision that works where the user runs: CPU or GPU."""
from typing import Union

import torch
from mmengine.device import get_device
from mmengine.optim import AmpOptimWrapper as MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from hvlm.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(MMEngineAmpOptimWrapper):
    """mmengine's ``AmpOptimWrapper`` that also runs on CPU.

    mmengine's wrapper asserts a GPU. On CPU this one autocasts to bfloat16
    (the only dtype CPU autocast supports, and a real speedup on CPUs with
    AMX) and skips loss scaling, which bfloat16 does not need: it has float32's
    exponent range. On GPU it behaves exactly like mmengine's (float16 with a
    dynamic ``GradScaler`` unless ``dtype='bfloat16'``).

    It is registered under mmengine's name in the ``hvlm`` scope, so
    ``optim_wrapper=dict(type='AmpOptimWrapper')`` and ``--amp`` work on any
    device; ``type='mmengine.AmpOptimWrapper'`` still reaches the original.

    Args:
        loss_scale: As in mmengine; ignored on CPU.
        dtype: ``'float16'``, ``'bfloat16'`` or None (float16 on GPU,
            bfloat16 on CPU). ``'float16'`` on CPU raises a ValueError.
    """

    def __init__(self,
                 loss_scale: Union[str, float, dict] = 'dynamic',
                 dtype: Union[str, torch.dtype, None] = None,
                 **kwargs) -> None:
        if get_device() != 'cpu':
            super().__init__(loss_scale=loss_scale, dtype=dtype, **kwargs)
            return
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, dtype)
        if dtype not in (None, torch.bfloat16):
            raise ValueError(
                f'AmpOptimWrapper: dtype={dtype} is not supported on CPU; '
                'CPU autocast runs in bfloat16 (dtype=None or "bfloat16")')
        OptimWrapper.__init__(self, **kwargs)
        self._scale_update_param = None
        self.loss_scaler = None
        self.cast_dtype = torch.bfloat16

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
            # a checkpoint written on GPU carries a scaler state: drop it
            state_dict = {
                k: v
                for k, v in state_dict.items() if k != 'loss_scaler'
            }
        super().load_state_dict(state_dict)

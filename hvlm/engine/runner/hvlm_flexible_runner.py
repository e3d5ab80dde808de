"""mmengine's FlexibleRunner (FSDP, DeepSpeed) with hvlm's checks and
hooks, for models that outgrow one device."""
import copy
import datetime
from typing import Union

import torch
from mmengine._strategy import FSDPStrategy
from mmengine.config import Config, ConfigDict
from mmengine.registry import STRATEGIES
from mmengine.runner import FlexibleRunner

from hvlm.registry import RUNNERS
from hvlm.utils.config import check_config, share_vocabulary
from hvlm.utils.dist import init_cpu_dist
from .hvlm_runner import DEFAULT_CUSTOM_HOOKS, HVLMRunner

# Strategies that need a package of their own, and how to get it.
NEEDS = dict(DeepSpeedStrategy='deepspeed', ColossalAIStrategy='colossalai')


@STRATEGIES.register_module()
class HVLMFSDPStrategy(FSDPStrategy):
    """mmengine's FSDPStrategy whose resume loads the optimizer state:
    mmengine 0.10 passes ``FSDP.optim_state_dict_to_load`` its arguments in
    the order of torch 1.x (state dict first); torch 2 takes ``(model,
    optim, optim_state_dict)``."""

    def load_optim_state_dict(self, state_dict: dict) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        optim_state_dict = FSDP.optim_state_dict_to_load(
            model=self.model, optim=self.optim_wrapper.optimizer,
            optim_state_dict=state_dict)
        self.optim_wrapper.load_state_dict(optim_state_dict)


@RUNNERS.register_module()
class HVLMFlexibleRunner(FlexibleRunner):
    """``runner_type = 'HVLMFlexibleRunner'`` with a ``strategy``:
    ``dict(type='FSDPStrategy', ...)`` (torch's fully sharded data
    parallel: parameters, gradients and optimizer state split over the
    processes) or ``dict(type='DeepSpeedStrategy', ...)`` (ZeRO, where
    ``deepspeed`` is installed). The sharding is mmengine's and torch's /
    DeepSpeed's; hvlm adds what :class:`HVLMRunner` adds before anything is
    built: the config check, the shared vocabularies, hvlm's default hooks,
    and without a GPU a gloo process group with FSDP on the CPU
    (``device_id=cpu``), so ``tools/dist_train.sh`` runs it on any machine.

    FSDP wraps a model whose frozen and trained weights mix (a frozen LM
    with LoRA, a projector): ``use_orig_params=True`` is set unless the
    config says otherwise. ``FSDPStrategy`` runs as
    :class:`HVLMFSDPStrategy` (its resume fixed for torch 2).
    """

    # collate_fn / worker_init_fn from hvlm's FUNCTIONS, seeded generators
    build_dataloader = staticmethod(HVLMRunner.build_dataloader)

    @classmethod
    def from_cfg(cls, cfg: Union[Config, ConfigDict]) -> 'FlexibleRunner':
        cfg = copy.deepcopy(cfg)
        strategy = dict(cfg.pop('strategy', None) or {})
        check_config(cfg)
        share_vocabulary(cfg)
        kind = strategy.setdefault('type', 'FSDPStrategy')
        if kind in NEEDS:
            try:
                __import__(NEEDS[kind])
            except ImportError as e:
                raise ImportError(
                    f'strategy.type={kind!r} needs `{NEEDS[kind]}`, which '
                    f'is not installed (pip install {NEEDS[kind]}); '
                    "strategy=dict(type='FSDPStrategy') needs only torch") \
                    from e
        launcher = cfg.get('launcher', 'none')
        dist_cfg = (cfg.get('env_cfg') or {}).get('dist_cfg') or {}
        timeout = dist_cfg.get('timeout')
        on_cpu = init_cpu_dist(
            launcher,
            datetime.timedelta(seconds=timeout) if timeout else None)
        if kind in ('FSDPStrategy', 'HVLMFSDPStrategy'):
            strategy['type'] = 'HVLMFSDPStrategy'
            wrapper = dict(strategy.get('model_wrapper') or {})
            wrapper.setdefault('type', 'MMFullyShardedDataParallel')
            wrapper.setdefault('use_orig_params', True)
            if on_cpu or not torch.cuda.is_available():
                wrapper['device_id'] = torch.device('cpu')
            strategy['model_wrapper'] = wrapper
        cfg.strategy = strategy
        custom_hooks = list(cfg.get('custom_hooks') or [])
        present = {hook.get('type') for hook in custom_hooks}
        custom_hooks += [
            dict(type=name) for name in DEFAULT_CUSTOM_HOOKS
            if name not in present
        ]
        cfg.custom_hooks = custom_hooks
        return super().from_cfg(cfg)

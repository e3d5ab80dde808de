"""FreezeModulesHook: the named modules do not move during their frozen
epochs, then train; what the config froze stays frozen; a resumed run
starts in the right stage; a wrong path is named."""
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from hvlm.engine.hooks import FreezeModulesHook
from hvlm.registry import HOOKS
from hvlm.utils import register_all_modules

from mmengine.config import Config

from tests.test_engine.test_curriculum_hook import TINY


def test_backbone_is_still_for_its_epochs_then_trains(tiny_demo_root,
                                                      tmp_path):
    from mmengine.hooks import Hook
    from hvlm.engine.runner import HVLMRunner
    register_all_modules()
    cfg = Config.fromfile(TINY)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = f'{tiny_demo_root}/{split}'
    cfg.work_dir = str(tmp_path)
    cfg.experiment_name = 'freeze_modules'
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.train_cfg.max_epochs = 3
    cfg.param_scheduler = []
    cfg.custom_hooks = [
        dict(type='FreezeModulesHook', modules=['backbone'], epochs=2)
    ]
    runner = HVLMRunner.from_cfg(cfg)
    backbone = runner.model.backbone
    kept, kept_param = next(
        (n, p) for n, p in backbone.named_parameters() if p.dim() > 1)
    kept_param.requires_grad_(False)  # frozen by the config: stays frozen
    snapshots = []

    class Snapshot(Hook):
        priority = 'LOWEST'

        def before_train(self, runner):
            self.after_train_epoch(runner)

        def after_train_epoch(self, runner):
            snapshots.append(
                ({n: p.detach().clone()
                  for n, p in runner.model.backbone.named_parameters()},
                 {n: p.detach().clone()
                  for n, p in runner.model.head.named_parameters()}))

    runner.register_hook(Snapshot())
    runner.train()
    (b0, h0), (b1, h1), (b2, h2), (b3, h3) = snapshots

    def moved(a, b):
        return [n for n in a if not torch.equal(a[n], b[n])]

    assert moved(b0, b1) == [] and moved(b1, b2) == []  # epochs 1, 2
    assert moved(h0, h1) and moved(h1, h2)  # the heads train meanwhile
    trained = moved(b2, b3)  # epoch 3: the backbone trains
    assert len(trained) > len(b0) // 2 and kept not in trained
    assert not kept_param.requires_grad
    assert all(p.requires_grad for n, p in backbone.named_parameters()
               if n != kept)


def test_resumed_run_starts_in_its_stage():
    model = nn.Module()
    model.backbone, model.head = nn.Linear(2, 2), nn.Linear(2, 2)
    hook = HOOKS.build(
        dict(type='FreezeModulesHook', modules='backbone', epochs=2))
    runner = SimpleNamespace(model=model, epoch=1)  # resumed after epoch 1
    hook.before_train_epoch(runner)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.head.parameters())
    runner.epoch = 2
    hook.before_train_epoch(runner)
    assert all(p.requires_grad for p in model.backbone.parameters())


def test_bad_arguments_and_paths_are_named():
    with pytest.raises(ValueError, match='epochs=-1'):
        FreezeModulesHook(['backbone'], -1)
    with pytest.raises(ValueError, match='must name submodules'):
        FreezeModulesHook([], 2)
    model = nn.Module()
    model.backbone = nn.Linear(2, 2)
    hook = FreezeModulesHook(['backbone', 'encoder.blocks'], 2)
    with pytest.raises(KeyError, match=r"'encoder\.blocks'.*\['backbone'\]"):
        hook.before_train_epoch(SimpleNamespace(model=model, epoch=0))

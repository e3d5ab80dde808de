"""The two commands of the SimCLR + fine-tuning recipe, with the tools'
own ``main`` and command lines: pretrain, fine-tune from the SSL
checkpoint (EMA, MixUp/CutMix, focal + smoothed CE), then test with TTA;
tiny loaders and schedules. In this process rather than three
subprocesses, which would spend most of the test importing hvlm."""
import importlib.util
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from hvlm.datasets import ensure_demo_images
from .conftest import REPO, find_one


def run_tool(name, *args):
    spec = importlib.util.spec_from_file_location(
        f'hvlm_tool_{name[:-3]}', REPO / 'tools' / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main([str(a) for a in args])


SIMCLR = str(REPO / 'configs' / 'selfsup' / 'simclr_hvit_demo.py')
FINETUNE = str(REPO / 'configs' / 'classification' / 'hvit_demo.py')


def loaders(root, names):
    opts = []
    for name in names:
        opts += [f'{name}.num_workers=0', f'{name}.persistent_workers=False',
                 f'{name}.batch_size=4']
    return opts + [
        f'train_dataloader.dataset.data_root={root}/training',
        'default_hooks.logger.interval=1'
    ]


@pytest.fixture
def short_tmp():
    """A short directory: mmengine formats every config it dumps with yapf,
    which took 5.5 s instead of 0.1 s per dump here when the data paths
    were pytest's long tmp_path (4 dumps per run)."""
    path = tempfile.mkdtemp(prefix='ssl', dir='/tmp')
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_pretrain_finetune_test_tta(short_tmp):
    tmp_path = short_tmp
    # data outside the configs' demo root: the configs' demo is ignored
    root = ensure_demo_images(
        str(tmp_path / 'i'),
        images_per_class=dict(training=2, validation=1, test=1), size=64)
    pre = tmp_path / 'pre'
    run_tool('train.py', SIMCLR, '--work-dir', pre, '--cfg-options',
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
             f'val_dataloader.dataset.data_root={root}/validation',
             *loaders(root, ['train_dataloader', 'val_dataloader']))
    log = find_one(pre, '*.log').read_text()
    assert 'contrastive_acc' in log and 'probe/probe_accuracy' in log
    ssl = pre / 'epoch_1.pth'
    backbone = {
        k: v
        for k, v in torch.load(ssl, map_location='cpu', weights_only=False)
        ['state_dict'].items() if k.startswith('backbone.')
    }

    ft = tmp_path / 'ft'
    splits = ['train_dataloader', 'val_dataloader', 'test_dataloader']
    run_tool('train.py', FINETUNE, '--work-dir', ft, '--cfg-options',
             f'model.ssl_checkpoint={ssl}', 'train_cfg.max_epochs=1',
             'train_cfg.val_interval=1', 'custom_hooks.0.begin_iter=0',
             'model.backbone.drop_path_rate=0.0',
             'optim_wrapper.optimizer.lr=0.0',
             'train_dataloader.dataset.shots_per_class=1',
             f'val_dataloader.dataset.data_root={root}/validation',
             f'test_dataloader.dataset.data_root={root}/test',
             *loaders(root, splits))
    log = find_one(ft, '*.log').read_text()
    assert 'cls/macro_f1' in log and 'cls/recall_disc' in log
    assert find_one(ft, 'confusion_matrix_*.png').stat().st_size > 0
    ckpt = torch.load(ft / 'epoch_1.pth', map_location='cpu',
                      weights_only=False)
    # EMAHook keeps both: EMA weights as state_dict, trained ones beside
    assert 'ema_state_dict' in ckpt
    # lr 0: the fine-tuned backbone is the SSL one, loaded by the config key
    for key, value in backbone.items():
        torch.testing.assert_close(ckpt['state_dict'][key], value)

    run_tool('test.py', FINETUNE, ft / 'epoch_1.pth', '--tta',
             '--work-dir', tmp_path / 'test', '--cfg-options',
             f'test_dataloader.dataset.data_root={root}/test',
             *loaders(root, ['test_dataloader']))
    assert 'cls/accuracy' in find_one(tmp_path / 'test', '*.log').read_text()


@pytest.mark.slow
def test_resume_restores_the_trained_and_the_ema_weights(short_tmp):
    """Fine-tuning 1 epoch then ``--resume`` to 2 ends where 2 epochs
    straight end, for the trained weights and for EMAHook's averaged
    ones (both in the checkpoint), with MixUp/CutMix and EMA on."""
    root = ensure_demo_images(
        str(short_tmp / 'i'),
        images_per_class=dict(training=2, validation=1, test=1), size=32)
    opts = [
        'train_cfg.val_interval=5', 'custom_hooks.0.begin_iter=0',
        'train_dataloader.dataset.shots_per_class=2',
        f'val_dataloader.dataset.data_root={root}/validation',
        f'test_dataloader.dataset.data_root={root}/test',
        *loaders(root, ['train_dataloader', 'val_dataloader',
                        'test_dataloader'])
    ]
    straight, resumed = short_tmp / 'straight', short_tmp / 'resumed'
    run_tool('train.py', FINETUNE, '--work-dir', straight, '--seed', 0,
             '--cfg-options', 'train_cfg.max_epochs=2', *opts)
    run_tool('train.py', FINETUNE, '--work-dir', resumed, '--seed', 0,
             '--cfg-options', 'train_cfg.max_epochs=1', *opts)
    run_tool('train.py', FINETUNE, '--work-dir', resumed, '--seed', 0,
             '--resume', '--cfg-options', 'train_cfg.max_epochs=2', *opts)

    def load(work):
        return torch.load(work / 'epoch_2.pth', map_location='cpu',
                          weights_only=False)

    a, b = load(straight), load(resumed)
    assert a['meta']['iter'] == b['meta']['iter'] > 0
    apart = 0.
    for part in ('state_dict', 'ema_state_dict'):
        assert a[part].keys() == b[part].keys()
        for key, value in a[part].items():
            torch.testing.assert_close(b[part][key], value, msg=key)
    for key, value in a['state_dict'].items():
        ema = a['ema_state_dict'].get('module.' + key)
        if ema is not None and value.is_floating_point():
            apart = max(apart, (ema - value).abs().max().item())
    # the EMA weights are not the trained ones (so both were compared)
    assert apart > 1e-4


@pytest.mark.slow
def test_pretrain_on_video_frames(tiny_demo_root, short_tmp):
    """configs/selfsup/simclr_hvit_demo-video.py: SimCLR on two frames of
    each video of hvlm's layout, through tools/train.py; its checkpoint's
    backbone loads into the fine-tuning model."""
    work = short_tmp / 'video'
    config = REPO / 'configs/selfsup/simclr_hvit_demo-video.py'
    run_tool('train.py', config, '--work-dir', work, '--cfg-options',
             'train_cfg.max_epochs=1',
             f'train_dataloader.dataset.data_root={tiny_demo_root}/training',
             'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             'train_dataloader.batch_size=4',
             'default_hooks.logger.interval=1')
    log = find_one(work, '*.log').read_text()
    assert 'contrastive_acc' in log and 'loss' in log
    ckpt = work / 'epoch_1.pth'
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    from mmengine.config import Config
    from hvlm.registry import MODELS
    cfg = Config.fromfile(FINETUNE).model
    cfg.ssl_checkpoint = str(ckpt)
    backbone = MODELS.build(cfg).backbone.state_dict()
    assert backbone
    for key, value in backbone.items():
        torch.testing.assert_close(value, state['backbone.' + key], msg=key)

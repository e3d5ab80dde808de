"""tools/train.py and tools/test.py end to end: outputs, resume, AMP, gloo."""
import pickle

import pytest
import torch

from .conftest import TINY, data_options, find_one, run_tool


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_train_writes_everything_then_test(tiny_demo_root, tmp_path):
    work = tmp_path / 'work'
    run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
             *data_options(tiny_demo_root))
    for name in ('epoch_1.pth', 'epoch_2.pth', 'last_checkpoint'):
        assert (work / name).is_file(), name
    best = find_one(work, 'best_action_frame_top1_epoch_*.pth')
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'epoch_2.pth')
    log = find_one(work, '*.log').read_text()
    assert 'action/frame_top1' in log
    assert find_one(work, 'events.out.tfevents.*').stat().st_size > 0

    ckpt = load(work / 'epoch_2.pth')
    meta = ckpt['meta']
    assert meta['epoch'] == 2
    assert 'roll_left' in meta['dataset_meta']['classes']
    assert {'python', 'numpy', 'torch'} <= set(ckpt['rng_state'])

    out = tmp_path / 'preds.pkl'
    proc = run_tool('test.py', TINY, best, '--work-dir', tmp_path / 'test',
                    '--out', out, '--cfg-options',
                    *data_options(tiny_demo_root))
    assert 'action/frame_top1' in proc.stdout + proc.stderr
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    assert preds and 'pred_frame_scores' in preds[0]


@pytest.mark.parametrize('workers', [0, 2])
def test_resume_is_exact(tiny_demo_root, tmp_path, workers):
    """1 epoch + --resume to 2 ends with the same weights as 2 straight,
    also with DataLoader workers (SeededSampler)."""
    straight, resumed = tmp_path / 'straight', tmp_path / 'resumed'
    opts = [
        *data_options(tiny_demo_root),
        f'train_dataloader.num_workers={workers}',
        f'train_dataloader.persistent_workers={workers > 0}'
    ]
    run_tool('train.py', TINY, '--work-dir', straight, '--cfg-options',
             *opts, 'train_cfg.max_epochs=2')
    run_tool('train.py', TINY, '--work-dir', resumed, '--cfg-options',
             *opts, 'train_cfg.max_epochs=1')
    proc = run_tool('train.py', TINY, '--work-dir', resumed, '--resume',
                    '--cfg-options', *opts, 'train_cfg.max_epochs=2')
    assert 'resumed epoch: 1' in proc.stdout + proc.stderr

    a, b = load(straight / 'epoch_2.pth'), load(resumed / 'epoch_2.pth')
    assert a['meta']['iter'] == b['meta']['iter'] > 0
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value, msg=key)
    for key in a['optimizer']['state']:
        torch.testing.assert_close(b['optimizer']['state'][key],
                                   a['optimizer']['state'][key])


def test_amp_on_cpu(tiny_demo_root, tmp_path):
    work = tmp_path / 'amp'
    # HVLM_CPU_AMP=1: autocast even where this CPU runs bfloat16 slowly, so
    # the test covers the autocast path on every machine
    run_tool('train.py', TINY, '--amp', '--work-dir', work, '--cfg-options',
             *data_options(tiny_demo_root), 'train_cfg.max_epochs=1',
             env=dict(HVLM_CPU_AMP='1'))
    log = find_one(work, '*.log').read_text()
    assert "type='AmpOptimWrapper'" in log
    assert 'action/frame_top1' in log


def test_two_process_gloo(tiny_demo_root, tmp_path):
    work = tmp_path / 'dist'
    run_tool(
        'dist_train.sh',
        TINY,
        2,
        '--work-dir',
        work,
        '--cfg-options',
        *data_options(tiny_demo_root),
        'train_cfg.max_epochs=1',
        env=dict(PORT='29517'),
        timeout=400)
    log = find_one(work, '*.log').read_text()
    assert 'world size 2' in log
    ckpt = load(work / 'epoch_1.pth')
    # DDP unwraps to the plain model's keys
    assert not any(k.startswith('module.') for k in ckpt['state_dict'])
    assert 'action/frame_top1' in log

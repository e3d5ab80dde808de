"""Each flag of tools/train.py and tools/test.py maps to one config change."""
import os.path as osp
from pathlib import Path

import pytest
from mmengine.config import Config

from hvlm.utils import cpu_amp
from hvlm.utils.cli import (merge_test_args, merge_train_args,
                            parse_test_args, parse_train_args)

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / 'configs' / 'hier_sports.py')


def train_cfg(*argv):
    args = parse_train_args([CONFIG, *argv])
    return merge_train_args(Config.fromfile(CONFIG), args)


# what the probe measured on an AVX2-only AMD EPYC, and on a Xeon with AMX
AVX2_EPYC = cpu_amp.CPUBF16Probe('AVX2', (), 82.0, 0.9)
AMX_XEON = cpu_amp.CPUBF16Probe('AVX512', ('amx_bf16', 'avx512_bf16'), 80.0,
                                190.0)


@pytest.fixture
def cpu(monkeypatch):
    """``cpu(probe)`` makes the bfloat16 probe report ``probe``."""
    monkeypatch.delenv('HVLM_CPU_AMP', raising=False)
    monkeypatch.setattr(cpu_amp.torch.cuda, 'is_available', lambda: False)

    def use(probe):
        monkeypatch.setattr(cpu_amp, 'probe_cpu_bf16', lambda: probe)

    return use


def test_defaults():
    cfg = train_cfg()
    assert cfg.work_dir == osp.join('./work_dirs', 'hier_sports')
    assert cfg.resume is False and cfg.load_from is None
    assert cfg.launcher == 'none'
    assert cfg.optim_wrapper.type == 'OptimWrapper'


def test_resume_bare_and_with_path():
    cfg = train_cfg('--resume')
    assert cfg.resume is True and cfg.load_from is None
    cfg = train_cfg('--resume', 'x/epoch_3.pth')
    assert cfg.resume is True and cfg.load_from == 'x/epoch_3.pth'


def test_amp_no_validate_seed_deterministic_auto_scale(cpu):
    cpu(AMX_XEON)
    cfg = train_cfg('--amp', '--seed', '7', '--deterministic',
                    '--auto-scale-lr', '--work-dir', '/tmp/w')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.val_cfg.fp16 is True
    assert cfg.randomness == dict(
        seed=7, diff_rank_seed=False, deterministic=True)
    assert cfg.auto_scale_lr.enable is True
    assert cfg.work_dir == '/tmp/w'
    cfg = train_cfg('--no-validate')
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.default_hooks.checkpoint.save_best is None


def test_amp_on_a_cpu_without_fast_bf16_falls_back_to_fp32(cpu):
    cpu(AVX2_EPYC)
    with pytest.warns(UserWarning) as record:
        cfg = train_cfg('--amp')
    message = str(record[0].message)
    # the measured reason, and what to use instead
    assert 'AVX2' in message and '0.9 GFLOP/s' in message
    assert '82.0 in float32' in message and 'HVLM_CPU_AMP=1' in message
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert not cfg.val_cfg.get('fp16') and not cfg.test_cfg.get('fp16')
    args = parse_test_args([CONFIG, 'ckpt.pth', '--amp'])
    with pytest.warns(UserWarning, match='AVX2'):
        cfg = merge_test_args(Config.fromfile(CONFIG), args)
    assert not cfg.test_cfg.get('fp16')


def test_amp_on_a_cpu_without_fast_bf16_keeps_a_float16_recipe(cpu):
    cpu(AVX2_EPYC)
    with pytest.warns(UserWarning, match='AVX2'):
        cfg = train_cfg('--amp', '--cfg-options',
                        'optim_wrapper.dtype=float16')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    # evaluation autocasts to bfloat16 on CPU: it stays in float32
    assert not cfg.val_cfg.get('fp16')


def test_amp_forced_on_a_slow_cpu(cpu, monkeypatch):
    cpu(AVX2_EPYC)
    monkeypatch.setenv('HVLM_CPU_AMP', '1')
    cfg = train_cfg('--amp')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.val_cfg.fp16 is True


def test_amp_on_a_cpu_with_fast_bf16_warns_nothing(cpu, recwarn):
    cpu(AMX_XEON)
    cfg = train_cfg('--amp')
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.val_cfg.fp16 is True
    assert not [w for w in recwarn if 'bfloat16' in str(w.message)]


def test_the_probe_measures_this_cpu():
    probe = cpu_amp.probe_cpu_bf16()
    assert probe.capability == cpu_amp.torch.backends.cpu.get_cpu_capability()
    assert probe.fp32_gflops > 0 and probe.bf16_gflops > 0
    assert probe.slowdown == pytest.approx(probe.fp32_gflops /
                                           probe.bf16_gflops)
    assert set(probe.native_flags) <= {'amx_bf16', 'avx512_bf16'}


def test_cfg_options_and_launcher():
    cfg = train_cfg('--launcher', 'pytorch', '--cfg-options',
                    'train_dataloader.dataset.data_root=/d/training',
                    'model.backbone.depths=(1,1)')
    assert cfg.launcher == 'pytorch'
    assert cfg.train_dataloader.dataset.data_root == '/d/training'
    assert tuple(cfg.model.backbone.depths) == (1, 1)


def test_test_args_out_and_checkpoint():
    args = parse_test_args(
        [CONFIG, 'ckpt.pth', '--out', 'preds.pkl'])
    cfg = merge_test_args(Config.fromfile(CONFIG), args)
    assert cfg.load_from == 'ckpt.pth'
    assert cfg.test_evaluator[-1] == dict(
        type='DumpResults', out_file_path='preds.pkl')
    args = parse_test_args([CONFIG, 'ckpt.pth', '--out', 'p.json'])
    with pytest.raises(ValueError, match='.pkl'):
        merge_test_args(Config.fromfile(CONFIG), args)


@pytest.mark.parametrize('option, says', [
    ('train_cfg.max_epochs', 'expected KEY=VALUE'),
    ('train_cfg.max_epochs=', 'the value is empty'),
    ("train_cfg.max_epochs=''", 'the value is empty'),
    ('=3', 'the key is empty'),
    ('train_cfg..max_epochs=3', 'empty part'),
    ('model.backbone.depths=(1,1', 'cannot parse the value'),
])
def test_malformed_cfg_options_are_argparse_errors(option, says, capsys):
    for parse in (parse_train_args, lambda argv: parse_test_args(
            argv[:1] + ['ckpt.pth'] + argv[1:])):
        with pytest.raises(SystemExit) as exit_info:
            parse([CONFIG, '--cfg-options', 'train_cfg.val_interval=1',
                   option])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f'--cfg-options {option!r}' in err and says in err


def test_flag_conflicts_exit_2_with_one_line(capsys):
    from hvlm.utils.cli import exit_on_config_error
    args = parse_test_args([CONFIG, 'ckpt.pth', '--out', 'p.json'])
    with pytest.raises(SystemExit) as exit_info:
        with exit_on_config_error('test.py'):
            merge_test_args(Config.fromfile(CONFIG), args)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'test.py: error: --out p.json: the file must end in .pkl\n')

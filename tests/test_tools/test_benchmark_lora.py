"""benchmark_lora at a tiny size: every setting runs, outputs agree."""
from mmengine.config import Config

from hvlm.analysis import benchmark_lora, format_benchmark
from .conftest import TINY, run_tool


def test_benchmark_runs_all_settings_and_checks_merge():
    cfg = Config.fromfile(TINY).model.to_dict()
    res = benchmark_lora(cfg, dict(type='LoRAAdapter', rank=4, alpha=8.),
                         batch_size=2, clip_shape=(4, 32, 32), iters=2,
                         warmup=1)
    assert set(res['seconds']) == {'base', 'lora_one_domain',
                                   'lora_per_sample', 'lora_merged'}
    assert all(s > 0 for s in res['seconds'].values())
    assert res['ratio_to_base']['base'] == 1.0
    assert res['max_abs_diff_merged'] < 1e-4
    assert res['lora_layers'] == 8 and res['rank'] == 4
    assert 'lora_merged' in format_benchmark(res)


def test_cli():
    proc = run_tool('analysis_tools/benchmark_lora.py', TINY, '--iters', '1',
                    '--warmup', '0', '--batch-size', '1', '--clip-shape',
                    '4', '32', '32', '--rank', '2')
    assert 'x base' in proc.stdout and 'lora_merged' in proc.stdout

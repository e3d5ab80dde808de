"""tools/analysis_tools/benchmark.py: structure and sanity, not speed."""
import json

import pytest

from hvlm.analysis import model_benchmark as bench
from .conftest import TINY, data_options, run_tool


def test_clip_for_length_hits_the_length_exactly():
    # time first, up to max_frames, then the most nearly square grid
    assert bench.clip_for_length(1024, (2, 8, 8), 32) == (32, 64, 64)
    assert bench.clip_for_length(2048, (2, 8, 8), 32) == (32, 64, 128)
    assert bench.clip_for_length(1568, (2, 16, 16), 16) == (16, 224, 224)
    assert bench.clip_for_length(96, (2, 8, 8), 8) == (8, 32, 48)
    with pytest.raises(ValueError, match='max_frames=1'):
        bench.clip_for_length(64, (2, 8, 8), 1)
    assert bench.sequence_lengths(5000) == [1024, 2048, 4096, 5000]
    assert bench.sequence_lengths(512) == [512]


def test_settings_change_only_the_backbone():
    model = dict(type='HierarchicalVLM', head=dict(type='H'),
                 backbone=dict(type='HierarchicalVideoEncoder',
                               attention=dict(type='LinearAttentionBlock'),
                               merger=dict(type='SpatialPoolMerger')))
    base = bench.setting_model_cfg(model, 'baseline')
    assert base['backbone']['attention'] == dict(type='FullAttention')
    assert base['backbone']['merger'] is None
    assert base['head'] == model['head']
    assert bench.setting_model_cfg(model, 'model') == model
    assert bench.setting_model_cfg(model,
                                   'model_with_cp')['backbone']['with_cp']
    with pytest.raises(ValueError, match="'ResNet'"):
        bench.setting_model_cfg(dict(backbone=dict(type='ResNet')), 'model')


def test_long_clip_pipeline_sets_length_and_size():
    pipeline = [dict(type='DecordInit'),
                dict(type='SampleFrames', clip_len=4, num_clips=4),
                dict(type='DecordDecode'), dict(type='FormatShape'),
                dict(type='PackVideoInputs')]
    out = bench.long_clip_pipeline(pipeline, (16, 32, 48))
    assert out[1] == dict(type='SampleFrames', clip_len=16, num_clips=1)
    assert out[3] == dict(type='Resize', scale=(48, 32), keep_ratio=False)
    with pytest.raises(ValueError, match='SampleFrames'):
        bench.long_clip_pipeline(pipeline[2:], (16, 32, 48))


def test_memory_rows_ratios_caps_and_stops():
    """The sweep's logic with a stand-in for the subprocess runner."""
    peaks = dict(baseline=lambda n: n / 10, model=lambda n: n / 20,
                 model_with_cp=lambda n: n / 80)
    calls = []

    def run(spec, mem_cap_mb=None, timeout_s=None):
        setting, n = spec['setting'], spec['seq_len']
        calls.append((setting, n))
        if setting == 'model' and n == 4096:
            return dict(status='error', reason='RuntimeError: boom')
        return dict(status='ok', reason='', clip=[8, 8, 8],
                    step_ms=n * (3. if setting == 'model_with_cp' else 2.),
                    peak_mb=peaks[setting](n), state_mb=10.,
                    total_mb=peaks[setting](n) + 10., memory_method='fake')

    rows = bench.benchmark_memory(
        'cfg.py', [2048, 1024, 4096, 8192],
        ['model_with_cp', 'model'], mem_cap_mb=500., run_case=run)
    by = {(r['setting'], r['seq_len']): r for r in rows}
    assert [r['setting'] for r in rows[:3]] == [
        'baseline', 'model', 'model_with_cp']
    assert calls[:3] == [('baseline', 1024), ('model', 1024),
                         ('model_with_cp', 1024)]
    cp = by[('model_with_cp', 2048)]
    assert cp['cp_peak_saving'] == pytest.approx(1 - 25.6 / 102.4)
    assert cp['cp_total_saving'] == pytest.approx(1 - 35.6 / 112.4)
    assert cp['cp_time_cost'] == pytest.approx(1.5)
    assert by[('model', 2048)]['peak_vs_baseline'] == pytest.approx(0.5)
    # an error stops that setting; the predicted 819 MB baseline at 8192
    # passes the 500 MB cap and is not run
    assert by[('model', 4096)]['status'] == 'error'
    assert by[('model', 8192)]['reason'] == 'error at 4096 tokens'
    assert 'cp_total_saving' not in by[('model_with_cp', 4096)]
    assert by[('baseline', 8192)]['status'] == 'skipped'
    assert 'memory cap 500 MB' in by[('baseline', 8192)]['reason']
    assert ('baseline', 8192) not in calls
    table = bench.format_memory(rows)
    assert 'with_cp vs model: peak -75%' in table and 'boom' in table


def test_tool_speed_and_memory_on_real_videos(tiny_demo_root, tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('analysis_tools/benchmark.py', TINY, '--speed',
                    '--memory', '--compare-with-cp', '--compare-with-amp',
                    '--num-iterations',
                    '1', '--warmup', '0', '--seq-lens', '64',
                    '--max-frames', '8', '--memory-iterations', '1',
                    '--threads', '1', '--out-json', out, '--cfg-options',
                    *data_options(tiny_demo_root), timeout=240)
    assert 'speedup_vs_baseline' in proc.stdout and 'VmHWM' in proc.stdout
    result = json.loads(out.read_text())
    speed = {(r['setting'], r['mode']): r for r in result['speed']['rows']}
    assert sorted(speed) == [('baseline', 'infer'), ('baseline', 'train'),
                             ('model', 'infer'), ('model', 'train'),
                             ('model_amp', 'infer'), ('model_amp', 'train'),
                             ('model_with_cp', 'train')]
    for mode in ('train', 'infer'):
        amp, model = speed[('model_amp', mode)], speed[('model', mode)]
        assert amp['speedup_vs_model'] == pytest.approx(
            model['latency_ms'] / amp['latency_ms'])
    for row in speed.values():
        assert row['latency_ms'] > 0 and row['p90_ms'] >= row['latency_ms']
        # tiny_sports: 2 videos of 4 clips, 4 x 64 x 64 at (2, 8, 8)
        assert (row['clips'], row['tokens_per_clip']) == (8, 128)
        assert row['clips_per_s'] == pytest.approx(
            8 / row['latency_ms'] * 1e3)
        base = speed[('baseline', row['mode'])]
        assert row['speedup_vs_baseline'] == pytest.approx(
            base['latency_ms'] / row['latency_ms'])
    memory = result['memory']['rows']
    assert [(r['setting'], r['status']) for r in memory] == [
        ('baseline', 'ok'), ('model', 'ok'), ('model_with_cp', 'ok')]
    base, model, cp = memory
    assert base['clip'] == [8, 32, 32] and base['tokens_per_clip'] == 64
    for row in memory:
        assert row['peak_mb'] > 0 and row['state_mb'] > 0
        assert row['total_mb'] == pytest.approx(row['peak_mb'] +
                                                row['state_mb'])
    assert model['state_mb'] == cp['state_mb']  # same parameters
    assert cp['cp_time_cost'] == pytest.approx(cp['step_ms'] /
                                               model['step_ms'])
    assert model['time_vs_baseline'] == pytest.approx(model['step_ms'] /
                                                      base['step_ms'])


def test_tool_errors_name_the_fault(tmp_path):
    proc = run_tool('analysis_tools/benchmark.py', TINY, check=False)
    assert proc.returncode != 0 and '--speed, --memory' in proc.stderr
    proc = run_tool('analysis_tools/benchmark.py', TINY, '--speed',
                    '--model-config', TINY.replace('tiny_sports', 'none'),
                    check=False)
    assert proc.returncode != 0 and 'none.py' in proc.stderr


def test_amp_setting_runs_its_steps_under_autocast(tiny_demo_root):
    """``model_amp`` times the model under bfloat16 autocast (its training
    step through AmpOptimWrapper, its inference under mmengine's autocast);
    ``model`` stays in float32."""
    import torch
    from mmengine.config import Config

    from hvlm.utils import register_all_modules
    from hvlm.utils.config import share_vocabulary
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(
        dict(option.split('=', 1) for option in data_options(tiny_demo_root)))
    share_vocabulary(cfg)
    for setting, want in (('model', torch.float32),
                          ('model_amp', torch.bfloat16)):
        subject = bench.Subject(cfg, setting, infer=True)
        linear = next(m for m in subject.model.backbone.modules()
                      if isinstance(m, torch.nn.Linear))
        seen = []
        linear.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
        subject.train_step()
        subject.infer_step()
        assert seen and set(seen) == {want}, setting

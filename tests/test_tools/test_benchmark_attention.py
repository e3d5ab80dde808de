"""The attention benchmark's logic on tiny sizes (a few seconds)."""
import json

import pytest

from hvlm.analysis import attention_benchmark as bench
from .conftest import run_tool

TINY = dict(num_heads=2, head_dims=8, repeat=1)


def fake_runner(ms, peak_mb):
    """Stand-in for the subprocess runner: figures from two tables."""
    calls = []

    def run(attention, seq_len, **kwargs):
        calls.append((attention['type'], seq_len))
        return dict(status='ok', reason='', memory_method='fake',
                    ms=ms[attention['type']](seq_len),
                    peak_mb=peak_mb[attention['type']](seq_len))

    return run, calls


def test_rows_are_relative_to_full_attention_of_the_same_length(
        monkeypatch):
    run, calls = fake_runner(
        ms=dict(FullAttention=lambda n: n * n / 1e3,
                LinearAttentionBlock=lambda n: n / 10),
        peak_mb=dict(FullAttention=lambda n: n / 100,
                     LinearAttentionBlock=lambda n: n / 400))
    monkeypatch.setattr(bench, 'run_case_in_subprocess', run)
    rows = bench.benchmark(['LinearAttentionBlock'], [4096, 1024, 65536],
                           full_max_len=16384, log=lambda line: None)
    # The baseline is measured first at every length, lengths in order,
    # and the quadratic baseline is not run past full_max_len.
    assert calls == [('FullAttention', 1024), ('LinearAttentionBlock', 1024),
                     ('FullAttention', 4096), ('LinearAttentionBlock', 4096),
                     ('LinearAttentionBlock', 65536)]
    by_key = {(r['type'], r['seq_len']): r for r in rows}
    row = by_key[('LinearAttentionBlock', 4096)]
    assert row['time_vs_full'] == pytest.approx((4096 / 10) /
                                                (4096**2 / 1e3))
    assert row['memory_vs_full'] == pytest.approx(0.25)
    assert row['us_per_token'] == pytest.approx(100.)
    skipped = by_key[('FullAttention', 65536)]
    assert skipped['status'] == 'skipped' and 'quadratic' in skipped['reason']
    assert by_key[('LinearAttentionBlock', 65536)]['time_vs_full'] is None
    table = bench.format_table(rows)
    assert 'LinearAttentionBlock' in table and 'quadratic' in table


def test_memory_cap_skips_cases_predicted_to_exceed_it(monkeypatch):
    run, calls = fake_runner(
        ms=dict(FullAttention=lambda n: 1., PerformerAttention=lambda n: 1.),
        peak_mb=dict(FullAttention=lambda n: n / 1024,
                     PerformerAttention=lambda n: n * n / 2**20))
    monkeypatch.setattr(bench, 'run_case_in_subprocess', run)
    rows = bench.benchmark(['PerformerAttention'], [1024, 2048, 4096],
                           mem_cap_mb=10, log=lambda line: None)
    # Performer: 1 MB, 4 MB, then a predicted 16 MB > 10 MB cap.
    last = rows[-1]
    assert (last['type'], last['status']) == ('PerformerAttention',
                                              'skipped')
    assert 'predicted 16 MB > memory cap 10 MB' in last['reason']
    assert ('PerformerAttention', 4096) not in calls


def test_power_law_prediction():
    assert bench._predicted_mb([(1000, 10.)], 4000) == pytest.approx(40.)
    quad = [(1000, 1.), (2000, 4.)]
    assert bench._predicted_mb(quad, 8000) == pytest.approx(64.)
    assert bench._predicted_mb([], 10) is None


def test_real_cases_in_subprocesses_and_the_caps():
    ok = bench.run_case_in_subprocess(
        dict(type='LinearAttentionBlock', local_window=16), 256, **TINY)
    assert ok['status'] == 'ok', ok
    assert ok['ms'] > 0 and ok['peak_mb'] >= 0
    assert 'VmHWM' in ok['memory_method']
    capped = bench.run_case_in_subprocess(
        dict(type='FullAttention'), 256, mem_cap_mb=1, **TINY)
    assert capped['status'] == 'skipped'
    assert 'memory cap of 1 MB' in capped['reason']
    broken = bench.run_case_in_subprocess(
        dict(type='PerformerAttention', nb_features=0), 64, **TINY)
    assert broken['status'] == 'error'
    assert 'nb_features=0' in broken['reason']


def test_peak_memory_follows_tensor_memory():
    """Linear attention's activations grow 4x with 4x the tokens; the
    measured peak must too (the measure is not allocator noise)."""
    peaks = [
        bench.run_case_in_subprocess(
            dict(type='LinearAttentionBlock'), n, num_heads=4, head_dims=16,
            repeat=1)['peak_mb'] for n in (8192, 32768)
    ]
    # [32768, 64] float32 is 8 MB; a dozen such activations at least.
    assert peaks[1] > 30, peaks
    assert 2.5 < peaks[1] / peaks[0] < 6, peaks


def test_tool_writes_table_and_json(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_tool('analysis_tools/benchmark_attention.py', '--types',
                    'PerformerAttention', '--seq-lens', '64',
                    '--heads', '2', '--head-dim', '8', '--repeat', '1',
                    '--out-json', str(out))
    assert 'time_vs_full' in proc.stdout and 'VmHWM' in proc.stdout
    result = json.loads(out.read_text())
    rows = result['rows']
    assert [(r['type'], r['seq_len']) for r in rows] == [
        ('FullAttention', 64), ('PerformerAttention', 64)]
    assert all(r['status'] == 'ok' for r in rows)
    assert rows[1]['time_vs_full'] == pytest.approx(
        rows[1]['ms'] / rows[0]['ms'])
    bad = run_tool('analysis_tools/benchmark_attention.py', '--types',
                   'NoSuchAttention', check=False)
    assert bad.returncode != 0 and 'NoSuchAttention' in bad.stderr

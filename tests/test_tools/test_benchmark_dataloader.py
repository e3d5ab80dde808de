"""tools/analysis_tools/benchmark_dataloader.py: structure and sanity."""
import json

import pytest
from mmengine.config import Config

from hvlm.analysis.dataloader_benchmark import data_time_share
from .conftest import TINY, data_options, run_tool


def test_tool_times_real_videos_per_worker_count(tiny_demo_root, tmp_path):
    out = tmp_path / 'loader.json'
    proc = run_tool('analysis_tools/benchmark_dataloader.py', TINY,
                    '--num-workers', '1', '--num-batches', '1',
                    '--out-json', out, '--cfg-options',
                    *data_options(tiny_demo_root), timeout=120)
    assert '| workers |' in proc.stdout
    result = json.loads(out.read_text())
    rows = result['rows']
    assert [r['num_workers'] for r in rows] == [0, 1]  # 0 added, first
    assert rows[0]['speedup_vs_0'] == 1.0
    num_clips = _num_clips(TINY)
    for row in rows:
        # tiny_sports: 3 sports videos in batches of 2; the first batch is
        # timed apart, the second holds the third video
        assert (row['batches'], row['clips']) == (1, num_clips)
        assert row['first_batches_s'] > 0
        assert row['clips_per_s'] == pytest.approx(num_clips /
                                                   row['seconds'])
        assert row['batches_per_s'] == pytest.approx(1 / row['seconds'])
    assert rows[1]['speedup_vs_0'] == pytest.approx(
        rows[1]['clips_per_s'] / rows[0]['clips_per_s'])


def _num_clips(config):
    cfg = Config.fromfile(config)
    sample, = [t for t in cfg.train_dataloader.dataset.pipeline
               if t['type'] == 'SampleFrames']
    return sample.get('num_clips', 1)


def _write_log(path, lines):
    path.parent.mkdir(parents=True)
    path.write_text('\n'.join(json.dumps(x) for x in lines) + '\n')


def test_data_time_share_of_a_run(tmp_path):
    run = tmp_path / 'work' / '20250101_000000'
    _write_log(run / 'vis_data' / 'scalars.json', [
        dict(lr=1e-3, data_time=0.5, time=1.0, iter=20, step=20),
        dict(lr=1e-3, data_time=0.0, time=1.0, iter=40, step=40),
        # validation: left out
        dict(**{'action/frame_top1': 0.5}, data_time=9., time=9., step=1),
        dict(lr=1e-3, data_time=0.1, time=2.0, iter=60, step=60),
    ])
    result = data_time_share(str(tmp_path / 'work'))
    assert result['windows'] == 3
    assert result['share'] == pytest.approx(0.6 / 4.0)
    assert result['share_after_first_window'] == pytest.approx(0.1 / 3.0)
    assert result['max_window_share'] == pytest.approx(0.5)
    assert not result['ok']  # 15% > 10%
    assert data_time_share(str(run), target=0.2)['ok']

    proc = run_tool('analysis_tools/benchmark_dataloader.py', '--from-log',
                    tmp_path / 'work', check=False)
    assert proc.returncode == 1
    assert 'data time 15.0% of step time' in proc.stdout
    assert 'FAIL' in proc.stdout


def test_bad_logs_are_named(tmp_path):
    bad = tmp_path / 'r' / 'vis_data' / 'scalars.json'
    _write_log(bad, [dict(lr=1., data_time=0., time=1., iter=1)])
    with bad.open('a') as f:
        f.write('{not json\n')
    with pytest.raises(ValueError, match=r'scalars.json: line 2 is not JSON'):
        data_time_share(str(bad))
    val_only = tmp_path / 'v' / 'scalars.json'
    _write_log(val_only, [dict(data_time=0.1, time=1., step=1)])
    with pytest.raises(ValueError, match='no training line'):
        data_time_share(str(val_only))
    with pytest.raises(FileNotFoundError, match='no scalars.json'):
        data_time_share(str(tmp_path / 'missing'))
    proc = run_tool('analysis_tools/benchmark_dataloader.py', check=False)
    assert proc.returncode == 2 and 'either CONFIG' in proc.stderr

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


def _line(epoch, it, data_time, time):
    """A training line as mmengine's LocalVisBackend writes it."""
    return dict(base_lr=1e-3, lr=1e-3, data_time=data_time, grad_norm=2.0,
                loss=3.0, time=time, epoch=epoch, iter=it, step=it)


def test_data_time_share_of_every_run(tmp_path):
    """Two runs of one work dir (the second resumed at epoch 2); epochs of
    30 iterations logged every 20: windows of 20 and 10 iterations."""
    work = tmp_path / 'work'
    first = work / '20250101_000000'
    _write_log(first / 'vis_data' / 'scalars.json', [
        _line(1, 20, 0.5, 1.0),
        _line(1, 30, 0.0, 1.0),
        # validation: left out
        {'action/frame_top1': 0.5, 'val/data_time': 9., 'val/time': 9.,
         'step': 1},
    ])
    _write_log(work / '20250102_000000' / 'vis_data' / 'scalars.json', [
        _line(2, 50, 0.2, 1.0),
        _line(2, 60, 0.1, 2.0),
    ])
    result = data_time_share(str(work))
    assert len(result['files']) == 2
    assert (result['windows'], result['iters']) == (4, 60)
    # data: 0.5*20 + 0*10 + 0.2*20 + 0.1*10 = 15; step: 20+10+20+20 = 70
    assert result['share'] == pytest.approx(15 / 70)
    # without each epoch's first window: (0 + 1) / (10 + 20)
    assert result['share_without_first_windows'] == pytest.approx(1 / 30)
    assert result['max_window_share'] == pytest.approx(0.5)
    assert not result['ok']
    assert data_time_share(str(work), target=0.25)['ok']
    # a run directory, or its log, is that run alone
    assert data_time_share(str(first))['files'] == [
        str(first / 'vis_data' / 'scalars.json')]
    assert data_time_share(str(first))['share'] == pytest.approx(10 / 30)

    proc = run_tool('analysis_tools/benchmark_dataloader.py', '--from-log',
                    work, check=False)
    assert proc.returncode == 1
    assert '4 logged training windows (60 iterations)' in proc.stdout
    assert 'data time 21.4% of step time' in proc.stdout
    assert '20250102_000000' in proc.stdout
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
    with pytest.raises(FileNotFoundError, match='does not exist'):
        data_time_share(str(tmp_path / 'missing'))
    proc = run_tool('analysis_tools/benchmark_dataloader.py', check=False)
    assert proc.returncode == 2 and 'either CONFIG' in proc.stderr

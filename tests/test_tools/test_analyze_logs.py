"""tools/analysis_tools/analyze_logs.py on the log of a real training."""
import importlib.util
import json

import matplotlib.image
import numpy as np
import pytest

from hvlm.analysis.log_curves import (extract_series, load_scalars,
                                      plot_curves, train_time_stats)
from .conftest import REPO, TINY, data_options, find_one, run_tool

TOOL = REPO / 'tools' / 'analysis_tools' / 'analyze_logs.py'


@pytest.fixture(scope='module')
def trained(tiny_demo_root, tmp_path_factory):
    """Work dir of a 2-epoch training of the tiny config, and its JSON
    scalar log read line by line."""
    work = tmp_path_factory.mktemp('analyze_logs') / 'work'
    run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
             *data_options(tiny_demo_root))
    log = find_one(work, 'scalars.json')
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    return work, log, lines


def load_tool():
    spec = importlib.util.spec_from_file_location('analyze_logs', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plot_curve_draws_the_logged_values(trained, tmp_path):
    work, log, lines = trained
    out = tmp_path / 'curves.png'
    proc = run_tool('analysis_tools/analyze_logs.py', 'plot_curve', log,
                    '--keys', 'loss', 'lr', 'action/frame_top1', '--out',
                    out, '--title', 'tiny')
    assert f'saved {out}' in proc.stdout
    image = matplotlib.image.imread(str(out))
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0

    train = [r for r in lines if 'iter' in r]
    val = [r for r in lines if 'iter' not in r]
    # 2 epochs of 3 training videos in batches of 2, logged every iteration
    assert [r['iter'] for r in train] == [1, 2, 3, 4]
    assert [r['step'] for r in val] == [1, 2]
    expected = {
        'loss': ([r['iter'] for r in train], [r['loss'] for r in train]),
        'lr': ([r['iter'] for r in train], [r['lr'] for r in train]),
        'action/frame_top1': ([r['step'] for r in val],
                              [r['action/frame_top1'] for r in val]),
    }
    fig, drawn = plot_curves([str(log)], list(expected))
    for ax, (key, (xs, ys)) in zip(fig.axes, expected.items()):
        series = drawn[(str(log), key)]
        np.testing.assert_array_equal(series.x, xs)
        np.testing.assert_array_equal(series.y, ys)
        # what the figure shows is that series
        np.testing.assert_array_equal(ax.lines[0].get_xydata(),
                                      np.stack([xs, ys], axis=1))
        assert ax.get_ylabel() == key
    assert [ax.get_xlabel() for ax in fig.axes] == ['iter', 'iter', 'epoch']

    # the validation timing has its own name and the epoch axis
    series = extract_series(lines, 'val/time')
    assert series.x_name == 'epoch'
    np.testing.assert_array_equal(series.y, [r['val/time'] for r in val])
    # a work dir stands for its runs' scalars.json
    assert np.array_equal(
        extract_series(load_scalars(str(work)), 'loss').y,
        expected['loss'][1])


def test_unknown_key_lists_the_keys_present(trained, capsys):
    _, log, _ = trained
    tool = load_tool()
    assert tool.main(['plot_curve', str(log), '--keys', 'los']) == 2
    err = capsys.readouterr().err
    assert f"{log} has no key 'los'. Did you mean loss" in err
    assert 'train: base_lr, data_time, grad_norm, loss,' in err
    assert 'action/frame_top1' in err

    assert tool.main(['plot_curve', str(log) + '.missing']) == 2
    assert f'log {log}.missing does not exist' in capsys.readouterr().err


def test_plot_curve_without_out_writes_into_the_work_dir(trained):
    work, log, _ = trained
    expected = work / 'curves_loss_action-frame_top1.png'
    for source in (work, log):
        proc = run_tool('analysis_tools/analyze_logs.py', 'plot_curve',
                        source, '--keys', 'loss', 'action/frame_top1')
        assert proc.stdout.splitlines()[-1] == f'saved {expected}'
        assert matplotlib.image.imread(str(expected)).std() > 0
        expected.unlink()


def _train_line(epoch, it, time, data_time=0.01):
    """A training line as mmengine's LocalVisBackend writes it."""
    return dict(base_lr=1e-3, lr=1e-3, data_time=data_time, grad_norm=3.2,
                loss=4.5, time=time, epoch=epoch, iter=it, memory=812,
                step=it)


def _write_run(work, timestamp, lines):
    path = work / timestamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True)
    path.write_text(''.join(json.dumps(x) + '\n' for x in lines))
    return path


def test_cal_train_time_counts_every_window_of_every_run(tmp_path, capsys):
    """Epochs of 30 iterations logged every 20 (ignore_last=False): each
    epoch has a 20-iteration window and a 10-iteration one. The run was
    resumed from epoch 1's checkpoint after logging iteration 50; the
    second run logged it again."""
    work = tmp_path / 'work'
    val = {'action/frame_top1': 0.4, 'val/time': 9.0, 'step': 1}
    _write_run(work, '20250101_000000', [
        _train_line(1, 20, 0.5), _train_line(1, 30, 0.1), val,
        _train_line(2, 50, 7.0)])
    _write_run(work, '20250102_000000', [
        _train_line(2, 50, 0.2), _train_line(2, 60, 0.4)])

    stats = train_time_stats(load_scalars(str(work)))
    # epoch 1: 0.5 s x 20 + 0.1 s x 10; epoch 2: 0.2 s x 20 + 0.4 s x 10
    assert stats['epochs'] == {
        1: pytest.approx(dict(s_per_iter=11 / 30, seconds=11, iters=30,
                              windows=2)),
        2: pytest.approx(dict(s_per_iter=8 / 30, seconds=8, iters=30,
                              windows=2)),
    }
    assert (stats['slowest'], stats['fastest']) == (1, 2)
    assert stats['std'] == pytest.approx(np.std([11 / 30, 8 / 30]))
    # the average leaves out each epoch's first (worker start-up) window
    assert stats['average'] == pytest.approx((0.1 * 10 + 0.4 * 10) / 20)
    assert (stats['num_iters'], stats['num_windows']) == (20, 2)
    everything = train_time_stats(load_scalars(str(work)), True)
    assert everything['average'] == pytest.approx(19 / 60)
    assert everything['epochs'] == stats['epochs']

    tool = load_tool()
    assert tool.main(['cal_train_time', str(work)]) == 0
    out = capsys.readouterr().out
    assert 'average iter time: 0.2500 s/iter over 20 iterations' in out
    assert '  epoch 1: 0.3667 s/iter, 30 iterations, 11.0 s' in out
    assert '  epoch 2: 0.2667 s/iter, 30 iterations, 8.0 s' in out
    assert 'slowest epoch 1, average time is 0.3667 s/iter' in out
    assert tool.main(['cal_train_time', str(work), '--include-outliers']) == 0
    assert 'average iter time: 0.3167 s/iter over 60 iterations' in \
        capsys.readouterr().out


def test_cal_train_time_on_a_real_log(trained, capsys):
    _, log, lines = trained
    train = [r for r in lines if 'iter' in r]
    # logged every iteration: each line stands for one iteration
    per_epoch = {}
    for r in train:
        per_epoch.setdefault(r['epoch'], []).append(r['time'])
    stats = train_time_stats(load_scalars(str(log)))
    for epoch, times in per_epoch.items():
        assert stats['epochs'][epoch]['s_per_iter'] == pytest.approx(
            np.mean(times))
        assert stats['epochs'][epoch]['iters'] == len(times)
    assert stats['average'] == pytest.approx(
        np.mean([t for ts in per_epoch.values() for t in ts[1:]]))
    assert load_tool().main(['cal_train_time', str(log)]) == 0
    assert f'average iter time: {stats["average"]:.4f} s/iter' in \
        capsys.readouterr().out

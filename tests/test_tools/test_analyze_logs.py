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

    # val:time is the validation timing, not the training one
    series = extract_series(lines, 'val:time')
    np.testing.assert_array_equal(series.y, [r['time'] for r in val])
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


def test_cal_train_time(trained, capsys):
    _, log, lines = trained
    times = {}
    for r in lines:
        if 'iter' in r:
            times.setdefault(r['epoch'], []).append(r['time'])
    # first line of each epoch left out (worker start-up)
    per_epoch = {e: np.mean(t[1:]) for e, t in times.items()}
    slowest = max(per_epoch, key=per_epoch.get)

    stats = train_time_stats(load_scalars(str(log)))
    assert stats['average'] == pytest.approx(
        np.mean([t for ts in times.values() for t in ts[1:]]))
    assert stats['slowest'] == slowest and stats['epochs'] == pytest.approx(
        per_epoch)

    assert load_tool().main(['cal_train_time', str(log)]) == 0
    out = capsys.readouterr().out
    assert f'average iter time: {stats["average"]:.4f} s/iter' in out
    assert (f'slowest epoch {slowest}, average time is '
            f'{per_epoch[slowest]:.4f} s/iter') in out

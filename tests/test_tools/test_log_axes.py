"""Every logged scalar name keeps one kind of x axis, across runs.

Two tiny trainings, one validating every epoch and one never, are read
back from ``scalars.json`` and from TensorBoard's event files. A training
line (it has ``iter``) is logged at the iteration, a validation line at the
epoch: no name may appear in both kinds of line.
"""
import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import \
    EventAccumulator

from .conftest import TINY, data_options, find_one, run_tool

POSITION_KEYS = ('epoch', 'iter', 'step')


@pytest.fixture(scope='module')
def two_runs(tiny_demo_root, tmp_path_factory):
    root = tmp_path_factory.mktemp('log_axes')
    runs = {}
    for name, options in (('with_val', []),
                          ('without_val', ['train_cfg.val_begin=3'])):
        work = root / name
        run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
                 *data_options(tiny_demo_root), *options)
        runs[name] = find_one(work, 'scalars.json')
    return runs


def _axes(lines):
    """{name: {'iter' or 'epoch'}} over the lines of a scalars.json."""
    axes = {}
    for line in lines:
        kind = 'iter' if 'iter' in line else 'epoch'
        for key in line:
            if key not in POSITION_KEYS:
                axes.setdefault(key, set()).add(kind)
    return axes


def test_each_scalar_has_one_axis_in_every_run(two_runs):
    logs = {name: [json.loads(x) for x in path.read_text().splitlines()]
            for name, path in two_runs.items()}
    # the runs are what they claim: one validated, the other did not
    assert any('iter' not in x for x in logs['with_val'])
    assert all('iter' in x for x in logs['without_val'])

    axes = {}
    for lines in logs.values():
        for key, kinds in _axes(lines).items():
            axes.setdefault(key, set()).update(kinds)
    mixed = {key: kinds for key, kinds in axes.items() if len(kinds) > 1}
    assert not mixed
    for key in ('time', 'data_time', 'loss', 'skipped_videos'):
        assert axes[key] == {'iter'}
    for key in ('val/time', 'val/data_time', 'val/skipped_videos',
                'action/frame_top1'):
        assert axes[key] == {'epoch'}


def test_tensorboard_holds_the_same_series(two_runs):
    for path in two_runs.values():
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        events = EventAccumulator(str(path.parent))
        events.Reload()
        # TensorBoard also gets the position keys epoch and iter as series
        tags = set(events.Tags()['scalars']) - set(POSITION_KEYS)
        assert tags == set(_axes(lines))
        for tag in ('time', 'val/time', 'skipped_videos'):
            if tag not in tags:  # validation tags: the run with validation
                continue
            logged = [x for x in lines if tag in x]
            events_of_tag = events.Scalars(tag)
            assert [e.step for e in events_of_tag] == \
                [x['step'] for x in logged]
            # TensorBoard keeps float32
            assert [e.value for e in events_of_tag] == pytest.approx(
                [x[tag] for x in logged], rel=1e-6)

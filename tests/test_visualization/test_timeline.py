"""The timeline picture as geometry: labels that do not cover each other,
an actionness axis that shows the curve's shape, wrapped captions and a
ground-truth lane."""
import itertools

import numpy as np
import pytest

from hvlm.visualization import draw_timeline, pack_lanes, timeline_figure

CAPTION = ('a ball rolls left across the field while the player runs '
           'after it as fast as he can')


def _result(ground_truth=True):
    times = np.arange(0, 60, 0.3)
    segments = [
        dict(start=s, end=e, label=name, label_id=i, score=p)
        for i, (s, e, name, p) in enumerate([
            (0., 10., 'roll_left', .9), (2., 12., 'roll_right', .8),
            (3., 5., 'jump', .7), (5.5, 6., 'spin', .6),
            (20., 21., 'slide', .5), (21., 22., 'pulse', .4),
            (40., 59., 'lift', .3), (59.5, 60., 'late_roll_right', .2)])
    ]
    result = dict(
        video='match.mp4', duration=60.,
        action_detection=dict(
            segments=segments,
            frames=dict(time=times.tolist(),
                        actionness=(0.999 + 9e-4 * np.sin(times / 3)
                                    ).tolist())),
        captioning=dict(captions=[
            dict(start=0., end=10., text=CAPTION),
            dict(start=2., end=12., text='the player kicks the ball'),
            dict(start=40., end=59., text='lift')]))
    if ground_truth:
        result['ground_truth'] = dict(actions=[
            dict(start=0., end=11., label='roll_left'),
            dict(start=11., end=60., label='lift')])
    return result


def _axes(fig):
    return {ax.get_gid(): ax for ax in fig.axes}


def _text_boxes(fig, ax):
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.texts]


def _overlap(a, b):
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and
            min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5)


def test_pack_lanes_keeps_overlapping_extents_apart():
    extents = [(0, 10), (2, 12), (3, 5), (10, 11), (12, 13), (5, 6)]
    lanes = pack_lanes(extents)
    for i, j in itertools.combinations(range(len(extents)), 2):
        if lanes[i] == lanes[j]:
            (a0, a1), (b0, b1) = extents[i], extents[j]
            assert a1 <= b0 or b1 <= a0, (extents[i], extents[j])
    assert lanes[3] == 0 and lanes[4] == 0  # reuse a lane once it is free
    assert lanes[5] == 2 and max(lanes) == 2


def test_labels_never_cover_each_other():
    fig = timeline_figure(_result())
    axes = _axes(fig)
    assert set(axes) == {'ground truth', 'actions', 'actionness',
                         'captions'}
    renderer = fig.canvas.get_renderer()
    for row in ('ground truth', 'actions', 'captions'):
        boxes = _text_boxes(fig, axes[row])
        for a, b in itertools.combinations(boxes, 2):
            assert not _overlap(a, b), row
        # a label near the end is moved left, not cut by the axis' edge
        frame = axes[row].get_window_extent(renderer)
        assert all(frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1
                   for box in boxes), row
    # bars of one lane do not overlap in time either
    bars = [(p.get_x(), p.get_x() + p.get_width(), p.get_y())
            for p in axes['actions'].patches]
    assert len(bars) == 8
    for (a0, a1, ya), (b0, b1, yb) in itertools.combinations(bars, 2):
        if ya == yb:
            assert a1 <= b0 or b1 <= a0


def test_actionness_axis_spans_the_curve():
    fig = timeline_figure(_result())
    ax = _axes(fig)['actionness']
    low, high = ax.get_ylim()
    curve = ax.lines[0].get_ydata()
    assert low <= curve.min() and curve.max() <= high
    # the curve's variation (2e-3 wide) fills most of the axis
    assert (curve.max() - curve.min()) / (high - low) > 0.7
    assert 'actionness' in ax.get_ylabel()


def test_captions_wrap_without_losing_words():
    fig = timeline_figure(_result())
    texts = [t.get_text() for t in _axes(fig)['captions'].texts]
    long = next(t for t in texts if t.startswith('a ball'))
    assert long.split() == CAPTION.split()
    assert '\n' in long and max(len(line)
                                for line in long.split('\n')) <= 40


def test_ground_truth_lane_only_when_annotated(tmp_path):
    fig = timeline_figure(_result(ground_truth=False))
    assert 'ground truth' not in _axes(fig)
    path = draw_timeline(_result(), str(tmp_path / 'out' / 'match.png'))
    from matplotlib.image import imread
    assert imread(path).shape[0] > 400


@pytest.mark.parametrize('actionness', [[0.5], [0.2, 0.2, 0.2]])
def test_flat_or_single_actionness_still_draws(actionness):
    result = dict(video='v.mp4', duration=1., action_detection=dict(
        segments=[], frames=dict(time=[0.1 * i for i in range(
            len(actionness))], actionness=actionness)))
    ax = _axes(timeline_figure(result))['actionness']
    low, high = ax.get_ylim()
    assert low < actionness[0] < high

import json
import multiprocessing
import os
import os.path as osp

import decord
import numpy as np
import pytest

from hvlm.datasets import (DEMO_ANSWERS, DEMO_CLASSES, DEMO_DOMAINS,
                           ensure_demo_data, generate_demo_data)
from hvlm.datasets import demo_data
from hvlm.datasets.demo_data import DEMO_PALETTE

SPLITS = ('training', 'validation', 'test')
TASK_FILES = ('action_detection.json', 'video_qa.json',
              'video_captioning.json', 'metadata.json')
SMALL = dict(
    videos_per_domain=dict(training=1, validation=1),
    frame_size=(48, 64),
    duration=(3.0, 3.5),
    workers=1)


def _load(root, split, name):
    with open(osp.join(root, split, 'annotations', name)) as f:
        return json.load(f)


def test_layout_and_declared_videos(tiny_demo_root):
    for split, per_domain in zip(SPLITS, (3, 2, 2)):
        meta = _load(tiny_demo_root, split, 'metadata.json')
        assert len(meta) == per_domain * len(DEMO_DOMAINS)
        assert {m['domain'] for m in meta} == set(DEMO_DOMAINS)
        for m in meta:
            reader = decord.VideoReader(
                osp.join(tiny_demo_root, split, 'videos',
                         m['video_id'] + '.mp4'))
            assert reader.get_avg_fps() == pytest.approx(m['fps'])
            assert len(reader) == round(m['duration'] * m['fps'])
            assert reader[len(reader) - 1].shape == (m['height'], m['width'],
                                                     3)


def test_annotations_are_consistent(tiny_demo_root):
    for split in SPLITS:
        meta = {
            m['video_id']: m
            for m in _load(tiny_demo_root, split, 'metadata.json')
        }
        for entry in _load(tiny_demo_root, split, 'action_detection.json'):
            actions = entry['actions']
            assert 2 <= len(actions) <= 4
            assert actions[0]['start'] == 0
            assert actions[-1]['end'] == meta[entry['video_id']]['duration']
            for a, b in zip(actions, actions[1:]):
                assert a['end'] == b['start'] and a['label'] != b['label']
            for a in actions:
                assert a['label'] in DEMO_CLASSES
                assert a['end'] - a['start'] >= 1.5 - 1e-6
        for entry in _load(tiny_demo_root, split, 'video_qa.json'):
            for qa in entry['qa_pairs']:
                assert DEMO_ANSWERS[qa['answer_id']] == qa['answer']
        for entry in _load(tiny_demo_root, split, 'video_captioning.json'):
            for cap in entry['captions']:
                assert cap['time'][0] < cap['time'][1]
                assert cap['text'].split()[0] in ('a', 'an')


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate_demo_data(str(tmp_path / 'a'), seed=3, **SMALL)
    b = generate_demo_data(str(tmp_path / 'b'), seed=3, **SMALL)
    c = generate_demo_data(str(tmp_path / 'c'), seed=4, **SMALL)
    for split in ('training', 'validation'):
        for name in TASK_FILES:
            path = osp.join(split, 'annotations', name)
            with open(osp.join(a, path), 'rb') as fa, \
                    open(osp.join(b, path), 'rb') as fb:
                assert fa.read() == fb.read(), path
    assert _load(a, 'training',
                 'metadata.json') != _load(c, 'training', 'metadata.json')
    assert not osp.exists(osp.join(a, 'test'))  # no videos asked for


def test_plans_vary_tasks_fps_and_resolution():
    """Over many videos every task is sometimes missing, and frame rate and
    resolution vary, so consumers meet all of it."""
    plans = [
        demo_data._plan_video(0, 0, d, i, 'training', (96, 128), 10,
                              (6.0, 10.0)) for i in range(100)
        for d in range(4)
    ]
    for key, rate in (('has_qa', 0.1), ('has_captions', 0.1), ('has_actions',
                                                               0.05)):
        missing = np.mean([not p[key] for p in plans])
        assert rate / 2 < missing < rate * 2, (key, missing)
    assert {p['fps'] for p in plans} >= {8.0, 10.0, 12.0}
    assert {(p['height'], p['width'])
            for p in plans} == {(96, 128), (72, 96), (120, 160)}
    # Domains have different class priors.
    counts = {
        d:
        np.bincount([
            DEMO_CLASSES.index(s['label']) for p in plans if p['domain'] == d
            for s in p['segments']
        ],
                    minlength=8)
        for d in DEMO_DOMAINS
    }
    roll = [DEMO_CLASSES.index('roll_right'), DEMO_CLASSES.index('roll_left')]
    assert counts['sports'][roll].sum() > 2 * counts['news'][roll].sum()


def test_rolling_object_moves_in_labelled_direction(tiny_demo_root):
    """Learnability: in the decoded frames, the object of the annotated
    colour moves right during roll_right and left during roll_left."""
    checked = {'roll_right': 0, 'roll_left': 0}
    for split in SPLITS:
        qa = {
            e['video_id']: e['qa_pairs']
            for e in _load(tiny_demo_root, split, 'video_qa.json')
        }
        for entry in _load(tiny_demo_root, split, 'action_detection.json'):
            vid = entry['video_id']
            if vid not in qa:
                continue
            colour = next(q['answer'] for q in qa[vid]
                          if q['question'] == 'what colour is the object?')
            reader = decord.VideoReader(
                osp.join(tiny_demo_root, split, 'videos', vid + '.mp4'))
            fps = reader.get_avg_fps()
            for action in entry['actions']:
                if action['label'] not in checked:
                    continue
                inds = [
                    i for i in range(len(reader))
                    if action['start'] <= i / fps < action['end']
                ]
                frames = reader.get_batch(inds).asnumpy()
                # [T, H, W] pixels close to the object's colour
                mask = np.abs(frames.astype(int) -
                              DEMO_PALETTE[colour]).max(-1) < 50
                assert (mask.sum((1, 2)) > 10).all(), vid
                xs = np.array([np.nonzero(m)[1].mean() for m in mask])
                # the object wraps around at the frame edge: the median
                # frame-to-frame shift ignores those jumps
                step = float(np.median(np.diff(xs)))
                if action['label'] == 'roll_right':
                    assert step > 1, (vid, action, step)
                else:
                    assert step < -1, (vid, action, step)
                checked[action['label']] += 1
    assert min(checked.values()) >= 2, checked


def test_generate_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='frame_size'):
        generate_demo_data(str(tmp_path), frame_size=(47, 64))
    with pytest.raises(ValueError, match='duration'):
        generate_demo_data(str(tmp_path), duration=(2.0, 3.0))
    with pytest.raises(ValueError, match="unknown splits \\['train'\\]"):
        generate_demo_data(str(tmp_path), videos_per_domain=dict(train=1))


# ---------------------------------------------------------------------------
# ensure_demo_data
# ---------------------------------------------------------------------------
ENSURE = dict(
    videos_per_domain=dict(validation=1),
    frame_size=(48, 64),
    duration=(3.0, 3.5),
    workers=1)


def test_ensure_second_call_is_a_no_op(tmp_path, monkeypatch):
    root = str(tmp_path / 'demo')
    assert ensure_demo_data(root, **ENSURE) == root
    stamp = os.stat(osp.join(root, '.complete')).st_mtime_ns

    def fail(*args, **kwargs):
        raise AssertionError('generated again')

    monkeypatch.setattr(demo_data, 'generate_demo_data', fail)
    # workers does not change the output, so it is not part of the record
    assert ensure_demo_data(root, **dict(ENSURE, workers=2)) == root
    assert os.stat(osp.join(root, '.complete')).st_mtime_ns == stamp


def test_ensure_regenerates_when_arguments_change(tmp_path):
    root = str(tmp_path / 'demo')
    ensure_demo_data(root, seed=0, **ENSURE)
    before = _load(root, 'validation', 'metadata.json')
    ensure_demo_data(root, seed=1, **ENSURE)
    assert _load(root, 'validation', 'metadata.json') != before
    assert sorted(os.listdir(tmp_path)) == ['demo', 'demo.lock']


def test_ensure_survives_stale_temp_dir(tmp_path):
    root = str(tmp_path / 'demo')
    stale = tmp_path / 'demo.tmp-crashed'
    (stale / 'validation').mkdir(parents=True)
    (stale / 'validation' / 'half.mp4').write_bytes(b'\0' * 10)
    ensure_demo_data(root, **ENSURE)
    assert not stale.exists()
    assert len(_load(root, 'validation', 'metadata.json')) == 4


def test_ensure_refuses_to_overwrite_foreign_directory(tmp_path):
    root = tmp_path / 'mine'
    root.mkdir()
    (root / 'precious.txt').write_text('keep me')
    with pytest.raises(FileExistsError, match='mine.*refusing'):
        ensure_demo_data(str(root), **ENSURE)
    assert (root / 'precious.txt').read_text() == 'keep me'


def _ensure_in_child(root, counter):
    original = demo_data.generate_demo_data

    def counted(*args, **kwargs):
        with open(counter, 'a') as f:
            f.write('generated\n')
        return original(*args, **kwargs)

    demo_data.generate_demo_data = counted
    ensure_demo_data(root, **ENSURE)


def test_ensure_generates_once_across_processes(tmp_path):
    root, counter = str(tmp_path / 'demo'), str(tmp_path / 'count.txt')
    ctx = multiprocessing.get_context('fork')
    procs = [
        ctx.Process(target=_ensure_in_child, args=(root, counter))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with open(counter) as f:
        assert f.read() == 'generated\n'
    assert osp.isfile(osp.join(root, '.complete'))
    assert sorted(os.listdir(tmp_path)) == ['count.txt', 'demo', 'demo.lock']

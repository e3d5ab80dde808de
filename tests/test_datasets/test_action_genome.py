"""ActionGenomeDataset on a hand-written Action Genome directory, the
restricted unpickler, and the demo data in AG's format."""
import os
import os.path as osp
import pickle

import cv2
import numpy as np
import pytest

from hvlm.datasets import action_genome, bad_entries
from hvlm.datasets.action_genome import (AG_CONTACTING, AG_SPATIAL,
                                         ActionGenomeDataset)
from hvlm.datasets.exceptions import AnnotationError
from hvlm.datasets.safe_pickle import UnsafePickleError, restricted_load
from hvlm.datasets.scene_graph_demo import (AG_OBJECT_FILE, AG_RELATION_FILE,
                                            DEMO_OBJECTS,
                                            generate_scene_graph_demo)


class _RunsCode:

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker, ))


@pytest.mark.parametrize('protocol', [2, 4])
def test_restricted_load_reads_plain_data(tmp_path, protocol):
    data = {
        'a.mp4/000001.png': [{
            'bbox': (1.0, 2.0, 3.0, 4.0),
            'arr': np.arange(6, dtype=np.float32).reshape(2, 3),
            'size': (480, 270),
            'flag': True,
            'names': ['x', 'y'],
            'none': None,
            's': {1, 2},
            'scalar': np.float32(2.5),
        }]
    }
    path = tmp_path / 'p.pkl'
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = restricted_load(str(path))
    entry = out['a.mp4/000001.png'][0]
    np.testing.assert_array_equal(entry['arr'], data['a.mp4/000001.png'][0]
                                  ['arr'])
    assert entry['arr'].dtype == np.float32
    assert entry['scalar'] == np.float32(2.5)
    assert {k: v for k, v in entry.items() if k not in ('arr', 'scalar')} \
        == {k: v for k, v in data['a.mp4/000001.png'][0].items()
            if k not in ('arr', 'scalar')}


def test_restricted_load_refuses_code(tmp_path):
    marker = str(tmp_path / 'ran')
    path = tmp_path / 'evil.pkl'
    path.write_bytes(pickle.dumps({'k': _RunsCode(marker)}))
    with pytest.raises(UnsafePickleError, match='evil.pkl.*posix.mkdir'):
        restricted_load(str(path))
    assert not osp.exists(marker)
    bad = tmp_path / 'text.pkl'
    bad.write_text('not a pickle at all')
    with pytest.raises(pickle.UnpicklingError, match='text.pkl'):
        restricted_load(str(bad))


# ---------------------------------------------------------------------------
# A hand-written Action Genome root
# ---------------------------------------------------------------------------
def _obj(cls, bbox, split='train', visible=True, att=('looking_at', ),
         spa=('in_front_of', ), con=('holding', )):
    return {
        'class': cls,
        'bbox': bbox,
        'visible': visible,
        'attention_relationship': list(att) if visible else None,
        'spatial_relationship': list(spa) if visible else None,
        'contacting_relationship': list(con) if visible else None,
        'metadata': {
            'tag': 'x',
            'set': split
        }
    }


def _person(boxes):
    return {
        'bbox': np.asarray(boxes, np.float32).reshape(-1, 4),
        'bbox_score': np.ones(len(boxes), np.float32),
        'bbox_size': (64, 48),
        'bbox_mode': 'xyxy'
    }


def _write_root(root, persons, objects, missing=(), unlisted=()):
    ann = osp.join(root, 'annotations')
    os.makedirs(ann, exist_ok=True)
    with open(osp.join(ann, 'person_bbox.pkl'), 'wb') as f:
        pickle.dump(persons, f)
    for name in ('object_bbox_and_relationship.pkl',
                 'object_bbox_and_relationship_filtersmall.pkl'):
        with open(osp.join(ann, name), 'wb') as f:
            pickle.dump(objects, f)
    for name, lines in (('object_classes.txt', AG_OBJECT_FILE),
                        ('relationship_classes.txt', AG_RELATION_FILE),
                        ('frame_list.txt',
                         [k for k in persons if k not in unlisted])):
        with open(osp.join(ann, name), 'w') as f:
            f.write('\n'.join(lines) + '\n')
    for key in persons:
        if key in missing:
            continue
        os.makedirs(osp.join(root, 'frames', key.split('/')[0]),
                    exist_ok=True)
        cv2.imwrite(osp.join(root, 'frames', key),
                    np.full((48, 64, 3), 100, np.uint8))


def _base(split_b='test'):
    persons, objects = {}, {}
    # video A: 4 frames, one without a visible object, one with no person
    for i in range(4):
        key = f'A.mp4/{i:06d}.png'
        persons[key] = _person([[1, 2, 20, 40], [5, 5, 6, 6]]
                               if i != 2 else [])
        objects[key] = [
            _obj('closet/cabinet', (10, 5, 8, 4), visible=i != 1,
                 spa=('in_front_of', 'on_the_side_of'),
                 con=('holding', 'carrying')),
            _obj('cup/glass/bottle', None, visible=False),
        ]
    for i in (4, 5):
        key = f'A.mp4/{i:06d}.png'
        persons[key] = _person([[1, 2, 20, 40]])
        objects[key] = [_obj('closet/cabinet', (10, 5, 8, 4))]
    # video B: 3 frames in the test split; video C: 2 frames only
    for i in range(3):
        persons[f'B.mp4/{i:06d}.png'] = _person([[0, 0, 10, 10]])
        objects[f'B.mp4/{i:06d}.png'] = [_obj('book', (1, 1, 5, 5),
                                              split=split_b)]
    for i in range(2):
        persons[f'C.mp4/{i:06d}.png'] = _person([[0, 0, 10, 10]])
        objects[f'C.mp4/{i:06d}.png'] = [_obj('book', (1, 1, 5, 5))]
    return persons, objects


def test_reads_real_layout_and_drops_by_rule(tmp_path, monkeypatch):
    logs = []
    for module in (action_genome, bad_entries):
        monkeypatch.setattr(module, 'print_log',
                            lambda msg, **kw: logs.append(msg))
    persons, objects = _base()
    # A loses frame 1 (nothing visible) and 2 (empty person box)
    _write_root(str(tmp_path), persons, objects, unlisted=('A.mp4/000004.png',
                                                           ))
    ds = ActionGenomeDataset(str(tmp_path), split='train')
    text = '\n'.join(logs)
    assert "1 kept frames are not in" in text
    assert "['A.mp4/000004.png']" in text
    assert 'dropped: frame_no_person_box=1, frame_no_visible_object=1, ' \
        'video_too_short=1' in text
    assert len(ds) == 1 and ds.drop_counts == dict(
        frame_no_visible_object=1, frame_no_person_box=1,
        video_too_short=1)
    info = ds.get_data_info(0)
    assert info['video_id'] == 'A.mp4'
    assert info['frame_names'] == [f'A.mp4/{i:06d}.png' for i in (0, 3, 4, 5)]
    np.testing.assert_array_equal(info['person_boxes'][0], [1, 2, 20, 40])
    np.testing.assert_array_equal(info['obj_boxes'][0], [10, 5, 18, 9])
    classes = ds.metainfo['classes']
    assert classes[0] == '__background__' and classes[1] == 'person'
    assert classes[9] == 'closet/cabinet'
    assert classes[info['obj_labels'][0]] == 'closet/cabinet'
    assert info['attention'][0] == 0
    assert info['spatial'][0].tolist() == [
        int(p in ('in_front_of', 'on_the_side_of')) for p in AG_SPATIAL]
    assert info['contacting'][0].tolist() == [
        int(p in ('holding', 'carrying')) for p in AG_CONTACTING]
    assert ds.metainfo['predicates'][5] == 'in_front_of'
    test = ActionGenomeDataset(str(tmp_path), split='test', mode='sgcls')
    assert [test.get_data_info(0)['video_id']] == ['B.mp4']


@pytest.mark.parametrize('fault, match', [
    ('class', "unknown object class 'unicorn'"),
    ('predicate', "unknown predicates \\['flying'\\]"),
    ('box', 'outside the 64x48 image'),
    ('nobox', 'visible but has no bbox'),
    ('frame', 'frame file is missing'),
])
def test_bad_input_named_or_skipped(tmp_path, fault, match):
    persons, objects = _base(split_b='train')
    key = 'B.mp4/000001.png'
    o = objects[key][0]
    missing = ()
    if fault == 'class':
        o['class'] = 'unicorn'
    elif fault == 'predicate':
        o['contacting_relationship'] = ['flying']
    elif fault == 'box':
        o['bbox'] = (70, 1, 5, 5)
    elif fault == 'nobox':
        o['bbox'] = None
    else:
        missing = (key, )
    _write_root(str(tmp_path), persons, objects, missing)
    with pytest.raises((AnnotationError, FileNotFoundError), match=match) as e:
        ActionGenomeDataset(str(tmp_path), split='train')
    where = 'frames/B.mp4/000001.png' if fault == 'frame' else \
        "object_bbox_and_relationship.pkl['B.mp4/000001.png'][0]"
    assert where in str(e.value)
    ds = ActionGenomeDataset(str(tmp_path), split='train', on_bad='skip')
    # B loses its frame 1 and is left with 2 frames: dropped as short
    assert sum(ds.drop_counts.values()) >= 2
    assert 'B.mp4' not in [ds.get_data_info(i)['video_id']
                           for i in range(len(ds))]


def test_demo_data_follows_from_what_is_drawn(tmp_path):
    root = generate_scene_graph_demo(str(tmp_path / 'ag'), videos=(14, 4))
    raw = restricted_load(osp.join(root, 'annotations',
                                   'object_bbox_and_relationship.pkl'))
    small = restricted_load(
        osp.join(root, 'annotations',
                 'object_bbox_and_relationship_filtersmall.pkl'))
    persons = restricted_load(osp.join(root, 'annotations',
                                       'person_bbox.pkl'))
    seen = set()
    for key, objs in raw.items():
        img = cv2.imread(osp.join(root, 'frames', key))[..., ::-1]
        pbox = persons[key]['bbox']
        if len(pbox) == 0:
            seen.add('empty_person')
            continue
        px1, _, px2, _ = pbox[0]
        for o in objs:
            if not o['visible']:
                assert o['bbox'] is None
                seen.add('invisible')
                continue
            x, y, w, h = o['bbox']
            if min(w, h) < 16:
                seen.add('tiny')
            spa, con = o['spatial_relationship'], o['contacting_relationship']
            seen.update(['multi_spatial'] if len(spa) > 1 else [])
            seen.update(['multi_contact'] if len(con) > 1 else [])
            # no horizontal overlap with the person <=> on the side
            overlap = min(x + w, px2) - max(x, px1)
            assert ('on_the_side_of' in spa) == (overlap <= 0), (key, o)
            if 'carrying' in con:
                assert 'holding' in con
                seen.add('carrying')
            # an object drawn in front shows its class colour at its centre
            colour = DEMO_OBJECTS[o['class']][1]
            cx, cy = int(x + w / 2), int(y + h / 2)
            if DEMO_OBJECTS[o['class']][0] == 'rect':
                cy -= 2  # off the spine line
            others = [q['bbox'] for q in objs
                      if q is not o and q['visible']]
            hidden = any(qx - 1 <= cx <= qx + qw + 1 and qy - 1 <= cy <=
                         qy + qh + 1 for qx, qy, qw, qh in others)
            if 'behind' not in spa and not hidden:
                assert np.abs(img[cy, cx].astype(int) -
                              colour).max() <= 2, (key, o['class'])
        kept = [o for o in small[key] if o['bbox'] is not None]
        assert all(min(o['bbox'][2:]) >= 16 for o in kept)
    assert seen >= {'empty_person', 'invisible', 'tiny', 'multi_spatial',
                    'multi_contact', 'carrying'}, seen
    # carrying needs motion: the person box moves to the next frame
    for key, objs in raw.items():
        if any('carrying' in (o['contacting_relationship'] or ())
               for o in objs):
            vid, num = key.split('/')
            later = sorted(k for k in persons if k.startswith(vid + '/')
                           and k > key)
            nxt = later[0] if later else None
            assert nxt is None or len(persons[key]['bbox']) == 0 or \
                len(persons[nxt]['bbox']) == 0 or abs(
                    persons[nxt]['bbox'][0][0] - persons[key]['bbox'][0][0]
                ) > 1.5
    ds = ActionGenomeDataset(root, split='train')
    assert len(ds) > 0 and ds.drop_counts['video_too_short'] > 0


# ---------------------------------------------------------------------------
# SGDET detections files
# ---------------------------------------------------------------------------
def _detections(persons, objects):
    """Ground-truth boxes of every frame as detections, plus one partly
    outside the 64x48 image."""
    frames = {}
    for key, person in persons.items():
        boxes, labels = [], []
        if len(person['bbox']):
            boxes.append(person['bbox'][0])
            labels.append('person')
        for o in objects[key]:
            if o['visible'] and o['bbox'] is not None:
                x, y, w, h = o['bbox']
                boxes.append([x, y, x + w, y + h])
                labels.append(o['class'].replace('/', ''))  # raw spelling
        boxes.append([50, 30, 70, 52])
        labels.append('bed')
        frames[key] = dict(boxes=np.asarray(boxes, np.float32),
                           labels=np.asarray(labels),
                           scores=np.linspace(1, .5, len(boxes)),
                           features=np.arange(len(boxes) * 2.).reshape(
                               -1, 2))
    return frames


@pytest.mark.parametrize('ext', ['.npz', '.json'])
def test_detections_file_round_trip_and_dataset(tmp_path, ext):
    from hvlm.datasets.scene_graph_detections import (load_detections,
                                                      write_detections)
    persons, objects = _base()
    _write_root(str(tmp_path), persons, objects)
    frames = _detections(persons, objects)
    if ext == '.json':  # labels as indices into the classes
        classes = ('__background__', ) + tuple(
            action_genome.normalise_object_class(n) for n in AG_OBJECT_FILE)
        for d in frames.values():
            d['labels'] = np.asarray([classes.index(
                action_genome.normalise_object_class(n))
                for n in d['labels']])
    path = write_detections(str(tmp_path / f'det{ext}'), frames)
    back = load_detections(path)
    assert list(back) == list(frames)
    for key, d in frames.items():
        np.testing.assert_allclose(back[key]['boxes'], d['boxes'])
        assert back[key]['labels'].tolist() == d['labels'].tolist()
        np.testing.assert_allclose(back[key]['scores'], d['scores'],
                                   rtol=1e-6)
        np.testing.assert_allclose(back[key]['features'], d['features'])
    ds = ActionGenomeDataset(str(tmp_path), split='train', mode='sgdet',
                             detections_file=path)
    info = ds.get_data_info(0)
    classes = ds.metainfo['classes']
    # A keeps frames 0, 3, 4, 5: their detections, frame by frame
    kept = info['frame_names']
    want = np.concatenate([frames[k]['boxes'] for k in kept])
    want[:, [0, 2]] = want[:, [0, 2]].clip(0, 63)  # clipped to the image
    want[:, [1, 3]] = want[:, [1, 3]].clip(0, 47)
    np.testing.assert_allclose(info['det_boxes'], want)
    assert info['det_frames'].tolist() == [
        t for t, k in enumerate(kept) for _ in frames[k]['boxes']]
    assert [classes[i] for i in info['det_labels'][:3]] == [
        'person', 'closet/cabinet', 'bed']
    assert info['det_features'].shape == (len(want), 2)
    with pytest.raises(ValueError, match='needs detections_file'):
        ActionGenomeDataset(str(tmp_path), split='train', mode='sgdet')


def test_detections_file_refuses_pickled_arrays(tmp_path):
    from hvlm.datasets.scene_graph_detections import load_detections
    path = tmp_path / 'evil.npz'
    np.savez(path, frame_names=np.array(['a.mp4/000001.png']),
             frame_index=np.array([0]), boxes=np.zeros((1, 4)),
             labels=np.array([_RunsCode(str(tmp_path / 'ran'))],
                             dtype=object), scores=np.ones(1))
    with pytest.raises(AnnotationError, match='evil.npz'):
        load_detections(str(path))
    assert not osp.exists(tmp_path / 'ran')


@pytest.mark.parametrize('fault, match, key', [
    ('frame', 'does not list it', "['B.mp4/000001.png']"),
    ('box', 'outside the 64x48 image', "['B.mp4/000001.png'][0]"),
    ('label', "unknown detection label 'unicorn'",
     "['B.mp4/000001.png'][1]"),
])
def test_bad_detections_named_or_skipped(tmp_path, fault, match, key):
    from hvlm.datasets.scene_graph_detections import write_detections
    persons, objects = _base(split_b='train')
    _write_root(str(tmp_path), persons, objects)
    frames = _detections(persons, objects)
    bad = 'B.mp4/000001.png'
    if fault == 'frame':
        del frames[bad]
    elif fault == 'box':
        frames[bad]['boxes'][0] = [70, 1, 80, 5]
    else:
        labels = frames[bad]['labels'].tolist()
        frames[bad]['labels'] = np.asarray(labels[:1] + ['unicorn']
                                           + labels[2:])
    path = write_detections(str(tmp_path / 'det.json'), frames)
    with pytest.raises(AnnotationError, match=match) as e:
        ActionGenomeDataset(str(tmp_path), split='train', mode='sgdet',
                            detections_file=path)
    assert f'det.json{key}' in str(e.value)
    ds = ActionGenomeDataset(str(tmp_path), split='train', mode='sgdet',
                             detections_file=path, on_bad='skip')
    kind = dict(frame='detections_missing_frame', box='detection_bad_box',
                label='detection_unknown_label')[fault]
    assert ds.drop_counts[kind] == 1
    ids = [ds.get_data_info(i)['video_id'] for i in range(len(ds))]
    if fault == 'frame':  # B is left with 2 frames: dropped as short
        assert 'B.mp4' not in ids
    else:  # one detection skipped, the frame kept
        info = ds.get_data_info(ids.index('B.mp4'))
        assert len(info['frame_names']) == 3
        assert (info['det_frames'] == 1).sum() == len(frames[bad]['boxes']) - 1


def test_detections_from_ground_truth(tmp_path):
    from hvlm.datasets.scene_graph_detections import (
        detections_from_ground_truth, load_detections)
    persons, objects = _base()
    _write_root(str(tmp_path), persons, objects)
    out = str(tmp_path / 'gt.npz')
    counts = detections_from_ground_truth(str(tmp_path), out, jitter=0,
                                          drop=0, false_positives=0)
    det = load_detections(out)
    assert counts['frames'] == len(persons) == len(det)
    for key, person in persons.items():
        want = [person['bbox'][0]] if len(person['bbox']) else []
        want += [[x, y, x + w, y + h] for o in objects[key]
                 if o['visible'] and o['bbox'] is not None
                 for x, y, w, h in [o['bbox']]]
        np.testing.assert_allclose(det[key]['boxes'],
                                   np.asarray(want).reshape(-1, 4))
    counts = detections_from_ground_truth(str(tmp_path), out, drop=1,
                                          false_positives=2, seed=1)
    det = load_detections(out)
    assert counts['true'] == 0 and counts['dropped'] > 0
    n = sum(len(d['boxes']) for d in det.values())
    assert n == counts['false_positives'] > 0
    assert all(set(d['labels'].tolist()) <= {'closet/cabinet', 'book'}
               for d in det.values())


# ---------------------------------------------------------------------------
# Frames decoded from videos
# ---------------------------------------------------------------------------
def test_frames_from_videos_equal_the_png_frames(tmp_path):
    """Each video written twice: PNG frames and an mp4 of the same frames
    (cv2's writer); the two pipelines agree within the codec's loss."""
    from hvlm.datasets.exceptions import VideoReadError
    from hvlm.datasets.transforms import LoadSceneGraphFrames
    persons, objects = _base()
    _write_root(str(tmp_path), persons, objects)
    rng = np.random.default_rng(0)
    H, W = 48, 64
    for vid in ('A.mp4', 'B.mp4', 'C.mp4'):
        keys = sorted(k for k in persons if k.startswith(vid))
        os.makedirs(tmp_path / 'videos', exist_ok=True)
        writer = cv2.VideoWriter(str(tmp_path / 'videos' / vid),
                                 cv2.VideoWriter_fourcc(*'mp4v'), 5, (W, H))
        for key in keys:
            # smooth blocks (a codec keeps them), different per frame
            img = cv2.resize(rng.integers(0, 255, (3, 4, 3), np.uint8),
                             (W, H), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(tmp_path / 'frames' / key), img)
            writer.write(img)
        writer.release()
    pipeline = [dict(type='LoadSceneGraphFrames', scale=(24, 32))]
    png = ActionGenomeDataset(str(tmp_path), split='train',
                              pipeline=pipeline)
    mp4 = ActionGenomeDataset(str(tmp_path), split='train',
                              frames_from='videos', pipeline=pipeline)
    a, b = png[0], mp4[0]
    assert b['frame_indices'] == [0, 3, 4, 5]
    assert b['video_path'].endswith(osp.join('videos', 'A.mp4'))
    assert a['imgs'].shape == b['imgs'].shape == (4, 24, 32, 3)
    assert b['scale_factor'] == a['scale_factor'] == (0.5, 0.5)
    diff = np.abs(a['imgs'].astype(int) - b['imgs'].astype(int))
    assert diff.mean() < 4 and diff.max() <= 16, (diff.mean(), diff.max())
    # and the frames differ from each other far more than that
    assert np.abs(np.diff(a['imgs'].astype(int), axis=0)).mean() > 30
    # a frame beyond the video's end, and a missing video, are named
    with pytest.raises(VideoReadError, match=r'A.mp4: has 6 frames.*\[9\]'):
        LoadSceneGraphFrames._decode(b['video_path'], [0, 9])
    os.remove(tmp_path / 'videos' / 'A.mp4')
    with pytest.raises(AnnotationError, match='videos/A.mp4: video file'):
        ActionGenomeDataset(str(tmp_path), split='train',
                            frames_from='videos')

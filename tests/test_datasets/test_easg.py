"""EASGDataset on a tiny EASG written here in the release's layout (the
annotation JSON and frames/<graph_uid>/<clip_uid>_<moment>.jpg): items
against the hand-written annotation, the cut into items, bad entries named
or skipped and counted, and SceneGraphRecall on EASG's predicate groups."""
import copy
import json

import cv2
import numpy as np
import pytest

from hvlm.datasets import AnnotationError, EASGDataset
from hvlm.evaluation.metrics.scene_graph_recall import SceneGraphRecall
from hvlm.utils import register_all_modules

register_all_modules(init_default_scope=False)

W, H = 64, 48


def _box(x, y, w, h):
    return dict(left=x, top=y, width=w, height=h)


def easg_annotation():
    """Two train clips and one val clip. Vocabulary (sorted): objects
    bowl, knife, onion, table; verbs cut, put, take; relations dobj, on,
    with."""
    return {
        'clipA': dict(split='train', W=W, H=H, graphs=[
            dict(graph_uid='g1', triplets=[
                ['CW', 'verb', 'cut'], ['cut', 'dobj', 'onion'],
                ['cut', 'with', 'knife:1'], ['cut', 'on', 'onion']],
                groundings=dict(
                    pre={'onion': _box(2, 3, 10, 8),
                         'knife': _box(20, 10, 6, 12),
                         'table': _box(0, 30, 60, 15)},  # no relation
                    pnr={'onion': _box(4, 3, 10, 8)},
                    post={})),
            dict(graph_uid='g2', triplets=[
                ['CW', 'verb', 'put'], ['put', 'dobj', 'onion'],
                ['put', 'on', 'table']],
                groundings=dict(post={'onion': _box(30, 30, 5, 5),
                                      'table': _box(0, 30, 60, 15)}))]),
        'clipB': dict(split='val', W=W, H=H, graphs=[
            dict(graph_uid='g3', triplets=[
                ['CW', 'verb', 'take'], ['take', 'dobj', 'bowl']],
                groundings=dict(pnr={'bowl': _box(10, 10, 10, 10)}))]),
        'clipC': dict(split='train', W=W, H=H, graphs=[
            dict(graph_uid='g4', triplets=[
                ['CW', 'verb', 'take'], ['take', 'dobj', 'knife']],
                groundings=dict(pre={'knife': _box(1, 1, 5, 5)},
                                pnr={'knife': _box(2, 1, 5, 5)},
                                post={'knife': _box(3, 1, 5, 5)}))]),
    }


def write_easg(root, ann=None):
    """The release's layout under ``root``; returns ``root``."""
    ann = easg_annotation() if ann is None else ann
    root.mkdir(parents=True, exist_ok=True)
    (root / 'EASG_unict_master_final_upd.json').write_text(json.dumps(ann))
    rng = np.random.default_rng(0)
    for clip_uid, clip in ann.items():
        for graph in clip['graphs']:
            folder = root / 'frames' / graph['graph_uid']
            folder.mkdir(parents=True, exist_ok=True)
            for moment in ('pre', 'pnr', 'post'):
                img = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
                cv2.imwrite(str(folder / f'{clip_uid}_{moment}.jpg'), img)
    return root


def test_items_follow_the_annotation(tmp_path):
    root = write_easg(tmp_path / 'easg')
    ds = EASGDataset(str(root), split='train', pipeline=[
        dict(type='LoadSceneGraphFrames', scale=(24, 32)),
        dict(type='PackSceneGraphInputs')])
    meta = ds.metainfo
    assert meta['classes'] == ('__background__', 'camera_wearer', 'bowl',
                               'knife', 'onion', 'table')
    assert meta['verbs'] == ('cut', 'put', 'take')
    assert meta['relations'] == ('dobj', 'on', 'with')
    assert meta['predicate_groups'] == (3, 0, 3)
    assert len(meta['predicates']) == 6
    # the table grounded in g1 has no relation there: dropped and counted
    assert ds.drop_counts['grounding_without_relation'] == 1
    assert [ds[i]['data_samples']['video_id'] for i in range(len(ds))] == [
        'clipA', 'clipC']
    a = ds.get_data_info(0)
    # frames with a kept object: g1 pre, g1 pnr, g2 post
    assert a['frame_names'] == ['g1/clipA_pre.jpg', 'g1/clipA_pnr.jpg',
                                'g2/clipA_post.jpg']
    assert a['img_shape'] == (H, W)
    np.testing.assert_array_equal(a['person_boxes'],
                                  [[0, 0, W - 1, H - 1]] * 3)
    assert a['obj_frames'].tolist() == [0, 0, 1, 2, 2]
    # onion, knife (the ':1' dropped); onion; onion, table
    assert a['obj_labels'].tolist() == [4, 3, 4, 4, 5]
    np.testing.assert_array_equal(a['obj_boxes'][:2],
                                  [[2, 3, 12, 11], [20, 10, 26, 22]])
    assert a['attention'].tolist() == [0, 0, 0, 1, 1]  # cut, cut, cut, put
    assert a['spatial'].shape == (5, 0)
    # onion: dobj + on; knife: with; g2: onion dobj, table on
    assert a['contacting'].tolist() == [[1, 1, 0], [0, 0, 1], [1, 1, 0],
                                        [1, 0, 0], [0, 1, 0]]
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 3, 24, 32)
    assert sample['data_samples']['scale_factor'] == (0.5, 0.5)
    val = EASGDataset(str(root), split='val')
    assert val.metainfo['classes'] == meta['classes']  # same vocabulary
    assert val.get_data_info(0)['frame_names'] == ['g3/clipB_pnr.jpg']


def test_long_clips_are_cut_at_graph_boundaries(tmp_path):
    ann = easg_annotation()
    ann['clipC']['graphs'].append(dict(copy.deepcopy(
        ann['clipC']['graphs'][0]), graph_uid='g5'))
    root = write_easg(tmp_path / 'easg', ann)
    ds = EASGDataset(str(root), split='train', max_frames=4)
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [i['video_id'] for i in infos] == ['clipA', 'clipC#0', 'clipC#1']
    assert infos[2]['frame_names'] == ['g5/clipC_pre.jpg',
                                       'g5/clipC_pnr.jpg',
                                       'g5/clipC_post.jpg']


def _break(ann, case):
    g1 = ann['clipA']['graphs'][0]
    if case == 'box_outside':
        g1['groundings']['pnr']['onion'] = _box(70, 3, 10, 8)
        return "['clipA']['graphs'][0]['groundings']['pnr']['onion']"
    if case == 'empty_box':
        g1['groundings']['pre']['knife'] = _box(20, 10, 0, 12)
        return "['clipA']['graphs'][0]['groundings']['pre']['knife']"
    if case == 'bad_triplet':
        g1['triplets'].append(['cut', 'with'])
        return "['clipA']['graphs'][0]['triplets'][4]"
    if case == 'two_verbs':
        g1['triplets'].append(['CW', 'verb', 'take'])
        return "['clipA']['graphs'][0]['triplets']"
    raise KeyError(case)


@pytest.mark.parametrize('case', ['box_outside', 'empty_box', 'bad_triplet',
                                  'two_verbs'])
def test_bad_entries_are_named_or_skipped(tmp_path, case):
    ann = easg_annotation()
    where = _break(ann, case)
    root = write_easg(tmp_path / 'easg', ann)
    with pytest.raises(AnnotationError) as err:
        EASGDataset(str(root), split='train')
    assert 'EASG_unict_master_final_upd.json' in str(err.value)
    assert where in str(err.value)
    ds = EASGDataset(str(root), split='train', on_bad='skip')
    assert sum(ds.drop_counts.values()) >= 1
    a = ds.get_data_info(0)
    if case in ('bad_triplet', 'two_verbs'):  # the whole graph g1 goes
        assert a['frame_names'] == ['g2/clipA_post.jpg']
    else:  # only the one box goes
        assert len(a['obj_labels']) == 4


def test_missing_frame_unknown_name_and_structure(tmp_path):
    root = write_easg(tmp_path / 'easg')
    (root / 'frames' / 'g1' / 'clipA_pnr.jpg').unlink()
    with pytest.raises(AnnotationError, match='clipA_pnr.jpg: frame file'):
        EASGDataset(str(root), split='train')
    ds = EASGDataset(str(root), split='train', on_bad='skip')
    assert ds.drop_counts['missing_frame'] == 1
    assert ds.get_data_info(0)['frame_names'] == ['g1/clipA_pre.jpg',
                                                  'g2/clipA_post.jpg']
    # class files fix the vocabulary (and its order): a name outside them
    # is bad input
    root = write_easg(tmp_path / 'easg1')
    (root / 'objects.txt').write_text('onion\nknife\nbowl\n')
    files = dict(objects='objects.txt')
    with pytest.raises(AnnotationError, match=r"\['clipA'\]\['graphs'\]"
                       r"\[1\]\['triplets'\]: \['table'\] not in the "):
        EASGDataset(str(root), split='train', class_files=files)
    ds = EASGDataset(str(root), split='train', on_bad='skip',
                     class_files=files)
    assert ds.drop_counts['unknown_name'] == 1
    assert ds.metainfo['classes'][2:] == ('onion', 'knife', 'bowl')
    assert ds.get_data_info(0)['obj_labels'].tolist() == [2, 3, 2]
    ann = easg_annotation()
    del ann['clipB']['W']
    root = write_easg(tmp_path / 'easg2', ann)
    with pytest.raises(AnnotationError, match=r"\['clipB'\]: missing keys "
                       r"\['W'\]"):
        EASGDataset(str(root), split='train', on_bad='skip')


def test_recall_on_easg_groups(tmp_path):
    """Verb and relation triplets of (camera wearer, predicate, object),
    matched as for Action Genome; the metric takes the group sizes from
    the data set."""
    root = write_easg(tmp_path / 'easg')
    ds = EASGDataset(str(root), split='train')
    s = dict(ds.get_data_info(0))
    # frame 0 (onion dobj+on, knife with): verb right for both, relations:
    # onion's 'on' scored above everything, knife's 'with' lowest
    T, M = 3, 5
    boxes = np.concatenate([s['person_boxes'], s['obj_boxes']])
    labels = np.concatenate([[1] * T, s['obj_labels']])
    frames = np.concatenate([np.arange(T), s['obj_frames']])
    verb = np.eye(3)[s['attention']] * 0.9 + 0.03
    rel = np.array([[.5, .9, .1], [.3, .2, .05], [.6, .4, .1],
                    [.8, .1, .1], [.1, .7, .1]])
    pred = dict(s, pred_boxes=boxes, pred_box_frames=frames,
                pred_labels=labels, pred_scores=np.ones(T + M),
                pred_pairs=np.stack([s['obj_frames'], np.arange(M) + T], 1),
                pred_attention=verb, pred_spatial=np.zeros((M, 0)),
                pred_contacting=rel)
    metric = SceneGraphRecall(ks=(1, 20), constraints=('with', 'no'))
    metric.dataset_meta = ds.metainfo
    metric.process(None, [pred])
    out = metric.evaluate(1)
    # with constraint: each pair keeps its verb and its best relation.
    # frame 0: 5 GT (2 verbs, onion dobj, onion on, knife with); kept: 2
    # verbs, onion 'on' (0.9), knife 'dobj' (wrong): 3/5. frame 1: verb,
    # dobj, on; kept verb, dobj: 2/3. frame 2: onion verb+dobj, table
    # verb+on: all 4 kept. Mean (3/5 + 2/3 + 1) / 3.
    assert out['sg/with_R@20'] == pytest.approx((3 / 5 + 2 / 3 + 1) / 3)
    assert out['sg/no_R@20'] == pytest.approx(1.0)
    # R@1, with: frame 0's best triplet is a verb (0.93) over 'on' (0.9)
    assert out['sg/with_R@1'] == pytest.approx((1 / 5 + 1 / 3 + 1 / 4) / 3)
    assert set(metric.per_predicate['with_R@20']) == {'cut', 'put', 'dobj',
                                                      'on', 'with'}
    assert metric.per_predicate['with_R@20']['with'] == 0.0


def test_vocab_root_gives_the_training_vocabulary(tmp_path):
    train = write_easg(tmp_path / 'train')
    ann = easg_annotation()
    for clip in ann.values():
        clip['split'] = 'val'
    del ann['clipA']  # cut, put, onion, table and two relations unseen
    val = write_easg(tmp_path / 'val', ann)
    alone = EASGDataset(str(val), split='val')
    shared = EASGDataset(str(val), split='val', vocab_root=str(train))
    assert alone.metainfo['predicate_groups'] == (1, 0, 1)
    assert shared.metainfo['predicate_groups'] == (3, 0, 3)
    assert shared.get_data_info(0)['obj_labels'].tolist() == [2]  # bowl
    assert shared.get_data_info(0)['attention'].tolist() == [2]  # take

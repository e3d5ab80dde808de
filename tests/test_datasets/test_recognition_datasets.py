"""Recognition datasets: split files of UCF-101, HMDB-51, Kinetics and
MMAction2 lists, hvlm's layout; class texts, K-shot, base/novel, skipping."""
import hashlib
import json
import os
import os.path as osp

import pytest

from hvlm.datasets import class_name_to_text, video_collate
from hvlm.registry import DATASETS
from tests.recognition_data import UCF_CLASSES, write_ucf

PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=4, frame_interval=2),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape'),
    dict(type='PackRecognitionInputs'),
]


@pytest.fixture(scope='module')
def ucf(tmp_path_factory):
    return write_ucf(str(tmp_path_factory.mktemp('ucf')),
                     per_class=dict(HammerThrow=3, Hammering=3,
                                    ApplyEyeMakeup=2, YoYo=5))


def build_ucf(ucf, split='train', **kwargs):
    return DATASETS.build(
        dict(type='UCF101Dataset', data_root=ucf['videos'],
             ann_file=ucf[split], class_index=ucf['class_index'],
             pipeline=PIPELINE, test_mode=split == 'test', **kwargs))


def test_class_texts():
    assert class_name_to_text('ApplyEyeMakeup') == 'Apply Eye Makeup'
    assert class_name_to_text('YoYo') == 'Yo Yo'
    assert class_name_to_text('brush_hair') == 'brush hair'
    assert class_name_to_text('TVShow') == 'TV Show'
    assert class_name_to_text('air drumming') == 'air drumming'
    assert class_name_to_text('Skiing') == 'Skiing'


def test_ucf_labels_follow_class_ind_not_sorted_order(ucf):
    train = build_ucf(ucf)
    assert train.metainfo['classes'] == UCF_CLASSES
    assert sorted(UCF_CLASSES) != list(UCF_CLASSES)
    assert train.metainfo['class_texts'] == ('Hammer Throw', 'Hammering',
                                             'Apply Eye Makeup', 'Yo Yo')
    for info in (train.get_data_info(i) for i in range(len(train))):
        folder = osp.basename(osp.dirname(info['filename']))
        assert UCF_CLASSES[info['label']] == folder
    assert len(train) == 13
    test = build_ucf(ucf, 'test')  # testlist: labels from the folders
    assert sorted(test.get_data_info(i)['label']
                  for i in range(len(test))) == [0, 1, 2, 3]
    item = test[2]
    assert item['data_samples'].gt_label.tolist() == [
        test.get_data_info(2)['label']]
    assert tuple(item['inputs'].shape) == (1, 3, 4, 32, 32)


def test_ucf_class_names_file(ucf, tmp_path):
    names = tmp_path / 'names.txt'
    names.write_text('throwing a hammer\nhammering\nmake-up\nyo-yo\n')
    ds = build_ucf(ucf, class_names_file=str(names))
    assert ds.metainfo['class_texts'] == ('throwing a hammer', 'hammering',
                                          'make-up', 'yo-yo')
    names.write_text('one\ntwo\n')
    with pytest.raises(ValueError, match=r'names.txt: 2 lines but .* 4 '):
        build_ucf(ucf, class_names_file=str(names))


def test_ucf_bad_split_lines_name_file_and_line(ucf, tmp_path):
    bad = tmp_path / 'trainlist01.txt'
    bad.write_text('Hammering/v_Hammering_g01_c01.avi 2\n'
                   'Juggling/v_Juggling_g01_c01.avi 5\n')
    with pytest.raises(ValueError, match=r"trainlist01.txt:2: class "
                       r"'Juggling' is not in .*classInd.txt"):
        build_ucf(dict(ucf, train=str(bad)))
    bad.write_text('Hammering/v_Hammering_g01_c01.avi 1\n')
    with pytest.raises(ValueError, match=r"trainlist01.txt:1: label 1 is "
                       r"'HammerThrow' .* folder 'Hammering'"):
        build_ucf(dict(ucf, train=str(bad)))
    ind = tmp_path / 'classInd.txt'
    ind.write_text('1 A\n3 B\n')
    with pytest.raises(ValueError, match=r'classInd.txt:2: id 3'):
        build_ucf(dict(ucf, class_index=str(ind)))


def file_states(folder):
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            p = osp.join(d, f)
            with open(p, 'rb') as fh:
                out[p] = hashlib.md5(fh.read()).hexdigest()
    return out


def test_bad_videos_skipped_counted_never_touched(ucf, tmp_path):
    import shutil
    root = str(tmp_path / 'copy')
    shutil.copytree(osp.dirname(ucf['videos']), root)
    paths = {k: v.replace(osp.dirname(ucf['videos']), root)
             for k, v in ucf.items()}
    videos = sorted(open(paths['test']).read().split())
    short = osp.join(paths['videos'], videos[0])
    from tests.recognition_data import write_video
    write_video(short, frames=2)  # fewer than clip_len=4
    empty = osp.join(paths['videos'], videos[1])
    open(empty, 'wb').close()
    os.remove(osp.join(paths['videos'], videos[2]))
    before = file_states(root)
    test = build_ucf(paths, 'test')
    batch = video_collate([test[i] for i in range(len(test))])
    assert len(batch['inputs']) == 1
    reasons = dict(batch['skipped'])
    assert 'fewer than clip_len=4' in reasons[short]
    assert 'empty' in reasons[empty]
    assert len(reasons) == 3
    assert file_states(root) == before


def shot_files(ds):
    return [ds.get_data_info(i)['filename'] for i in range(len(ds))]


def test_k_shot_seeded_balanced_and_short_classes(ucf):
    from hvlm.datasets import k_shot_indices
    a = build_ucf(ucf, k_shot=2, k_shot_seed=1)
    b = build_ucf(ucf, k_shot=2, k_shot_seed=1)
    assert shot_files(a) == shot_files(b)
    labels = sorted(a.get_data_info(i)['label'] for i in range(len(a)))
    assert labels == [0, 0, 1, 1, 2, 2, 3, 3]
    # the seed matters, and the draw is not "the first K files"
    yoyo = [3] * 5
    draws = {tuple(k_shot_indices(yoyo, UCF_CLASSES, 2, s))
             for s in range(6)}
    assert len(draws) > 1 and any(d != (0, 1) for d in draws)
    with pytest.raises(ValueError, match=r"K=3 .* 'ApplyEyeMakeup' has 2"):
        build_ucf(ucf, k_shot=3, on_few_videos='error')
    took = build_ucf(ucf, k_shot=3)
    assert sum(took.get_data_info(i)['label'] == 2
               for i in range(len(took))) == 2
    assert len(took) == 11


def test_base_novel_halves(ucf):
    base = build_ucf(ucf, class_subset='base')
    novel = build_ucf(ucf, class_subset='novel')
    assert base.metainfo['classes'] == UCF_CLASSES[:2]
    assert novel.metainfo['classes'] == UCF_CLASSES[2:]
    assert novel.metainfo['class_texts'] == ('Apply Eye Makeup', 'Yo Yo')
    for info in (novel.get_data_info(i) for i in range(len(novel))):
        folder = osp.basename(osp.dirname(info['filename']))
        assert novel.metainfo['classes'][info['label']] == folder
    assert len(base) + len(novel) == 13
    with pytest.raises(ValueError, match='class_subset'):
        build_ucf(ucf, class_subset='half')


def test_hmdb51_split_files(tmp_path):
    splits = tmp_path / 'splits'
    splits.mkdir()
    (splits / 'ride_bike_test_split1.txt').write_text(
        'b0.avi 1 \nb1.avi 2 \nb2.avi 0 \n')
    (splits / 'brush_hair_test_split1.txt').write_text('h0.avi 2\nh1.avi 1\n')
    (splits / 'brush_hair_test_split2.txt').write_text('h0.avi 1\nh1.avi 1\n')
    cfg = dict(type='HMDB51Dataset', data_root=str(tmp_path / 'hmdb51'),
               ann_file=str(splits), split=1)
    train = DATASETS.build(dict(cfg, subset='train'))
    test = DATASETS.build(dict(cfg, subset='test'))
    assert train.metainfo['classes'] == ('brush_hair', 'ride_bike')
    assert train.metainfo['class_texts'] == ('brush hair', 'ride bike')
    files = [(osp.relpath(i['filename'], str(tmp_path / 'hmdb51')),
              i['label']) for i in map(train.get_data_info, range(2))]
    assert files == [('brush_hair/h1.avi', 0), ('ride_bike/b0.avi', 1)]
    assert [test.get_data_info(i)['video_id'] for i in range(2)] == [
        'h0', 'b1']
    assert len(DATASETS.build(dict(cfg, subset='train', split=2))) == 2
    (splits / 'ride_bike_test_split1.txt').write_text('b0.avi 7\n')
    with pytest.raises(ValueError, match=r'ride_bike_test_split1.txt:1'):
        DATASETS.build(dict(cfg, subset='train'))


def test_kinetics_csv(tmp_path):
    train = tmp_path / 'train.csv'
    train.write_text('label,youtube_id,time_start,time_end,split\n'
                     'zumba,abc,14,24,train\n'
                     'air drumming,-x_1,0,10,train\n')
    val = tmp_path / 'validate.csv'
    val.write_text('label,youtube_id,time_start,time_end,split\n'
                   'zumba,q,3,13,val\nabseiling,r,1,11,val\n')
    ds = DATASETS.build(dict(type='KineticsDataset', data_root='/k/train',
                             ann_file=str(train)))
    assert ds.metainfo['classes'] == ('air drumming', 'zumba')
    assert ds.get_data_info(0)['filename'] == '/k/train/abc_000014_000024.mp4'
    assert ds.get_data_info(1)['label'] == 0
    with pytest.raises(ValueError, match=r"validate.csv:3: label "
                       r"'abseiling' is not among the 2 labels"):
        DATASETS.build(dict(type='KineticsDataset', data_root='/k/val',
                            ann_file=str(val), class_index=str(train)))


def test_video_list(tmp_path):
    lst = tmp_path / 'list.txt'
    lst.write_text('a/x.mp4 1\nb/y.mp4 0\n')
    names = tmp_path / 'classes.txt'
    names.write_text('PlayingGuitar\nsit_up\n')
    ds = DATASETS.build(dict(type='VideoListDataset', data_root='/v',
                             ann_file=str(lst), class_index=str(names)))
    assert ds.metainfo['class_texts'] == ('Playing Guitar', 'sit up')
    assert [ds.get_data_info(i)['label'] for i in range(2)] == [1, 0]
    lst.write_text('a/x.mp4 2\n')
    with pytest.raises(ValueError, match=r'list.txt:1: label 2'):
        DATASETS.build(dict(type='VideoListDataset', data_root='/v',
                            ann_file=str(lst), class_index=str(names)))


def test_hvlm_layout_dominant_action(tiny_demo_root):
    ds = DATASETS.build(dict(
        type='ActionVideoDataset',
        data_root=osp.join(tiny_demo_root, 'validation'),
        vocab_root='training'))
    with open(osp.join(tiny_demo_root, 'validation', 'annotations',
                       'action_detection.json')) as f:
        actions = {e['video_id']: e['actions'] for e in json.load(f)}
    classes = ds.metainfo['classes']
    assert list(classes) == sorted(classes)
    assert len(ds) > 0
    for info in map(ds.get_data_info, range(len(ds))):
        cover = {}
        for a in actions[info['video_id']]:
            cover[a['label']] = cover.get(a['label'], 0) + a['end'] - \
                a['start']
        assert cover[classes[info['label']]] == max(cover.values())


def test_hvlm_layout_relative_data_root(tiny_demo_root, monkeypatch):
    """A relative data_root (as the configs write it) gives each video's
    path once: it regressed to <root>/<root>/videos/... for the test split
    of the demo configs."""
    monkeypatch.chdir(osp.dirname(tiny_demo_root))
    rel = osp.join(osp.basename(tiny_demo_root), 'validation')
    ds = DATASETS.build(dict(
        type='ActionVideoDataset', data_root=rel, vocab_root='training'))
    assert len(ds) > 0
    for info in map(ds.get_data_info, range(len(ds))):
        assert info['filename'] == osp.join(
            rel, 'videos', info['video_id'] + '.mp4')
        assert osp.isfile(info['filename'])

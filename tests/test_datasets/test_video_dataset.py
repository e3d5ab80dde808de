import glob
import json
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config

from hvlm.datasets import (DEMO_CLASSES, DEMO_DOMAINS, VideoDataset,
                           caption_words, segment_at_times)
from hvlm.registry import DATASETS
from hvlm.structures import VideoDataSample
from hvlm.utils.config import share_vocabulary

REPO_CONFIGS = osp.join(osp.dirname(__file__), '..', '..', 'configs')
CONFIG = osp.join(REPO_CONFIGS, '_base_', 'datasets', 'hvlm_demo.py')


def _demo_cfg(split_key, root):
    """The demo config's dataset of ``split_key``, all splits pointed at
    ``root``, with the vocabulary sharing that HVLMRunner applies."""
    cfg = Config.fromfile(CONFIG)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = osp.join(root, split)
    share_vocabulary(cfg)
    return cfg[split_key]['dataset']


def _annotations(root, split, name):
    with open(osp.join(root, split, 'annotations', name)) as f:
        return {e['video_id']: e for e in json.load(f)}


def test_vocabularies_come_from_the_data(tiny_demo_root):
    dataset = DATASETS.build(
        dict(type='VideoDataset', data_root=tiny_demo_root + '/training'))
    meta = dataset.metainfo
    actions = _annotations(tiny_demo_root, 'training', 'action_detection.json')
    qa = _annotations(tiny_demo_root, 'training', 'video_qa.json')
    caps = _annotations(tiny_demo_root, 'training', 'video_captioning.json')
    assert meta['classes'] == tuple(
        sorted({a['label']
                for e in actions.values()
                for a in e['actions']}))
    assert set(meta['classes']) <= set(DEMO_CLASSES)
    assert meta['answers'] == tuple(
        sorted({q['answer']
                for e in qa.values()
                for q in e['qa_pairs']}))
    assert meta['words'] == tuple(
        sorted({
            w
            for e in caps.values()
            for c in e['captions']
            for w in caption_words(c['text'])
        }))
    assert meta['domains'] == DEMO_DOMAINS


def test_vocab_root_shares_index_spaces(tiny_demo_root):
    train = DATASETS.build(
        dict(type='VideoDataset', data_root=tiny_demo_root + '/training'))
    own = DATASETS.build(
        dict(type='VideoDataset', data_root=tiny_demo_root + '/test'))
    shared = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/test',
            vocab_root=tiny_demo_root + '/training'))
    assert shared.metainfo == train.metainfo
    assert own.metainfo['answers'] != train.metainfo['answers']
    classes, answers = shared.metainfo['classes'], shared.metainfo['answers']
    for info in shared:
        for action in info['actions']:
            expected = classes.index(action['label']) \
                if action['label'] in classes else -1
            assert action['label_id'] == expected
        for qa in info['qa_pairs']:
            expected = answers.index(qa['answer']) \
                if qa['answer'] in answers else -1
            assert qa['answer_id'] == expected


def test_vocab_root_as_sibling_split_name(tiny_demo_root):
    by_path = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/test',
            vocab_root=tiny_demo_root + '/training'))
    by_name = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/test/',
            vocab_root='training'))
    assert by_name.vocab_root == osp.join(tiny_demo_root, 'training')
    assert by_name.metainfo == by_path.metainfo


def test_explicit_metainfo_overrides(tiny_demo_root):
    classes = ['rest', 'roll_left', 'roll_right']
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/training',
            metainfo=dict(classes=classes)))
    assert dataset.metainfo['classes'] == tuple(classes)
    assert len(dataset.metainfo['answers']) > 0
    for info in dataset:
        for action in info['actions']:
            assert action['label_id'] == (
                classes.index(action['label'])
                if action['label'] in classes else -1)


def test_data_info_fields_and_task_subsets(tiny_demo_root):
    root = tiny_demo_root + '/training'
    dataset = DATASETS.build(dict(type='VideoDataset', data_root=root))
    meta = _annotations(tiny_demo_root, 'training', 'metadata.json')
    tasks = {
        'action_detection':
        _annotations(tiny_demo_root, 'training', 'action_detection.json'),
        'video_qa':
        _annotations(tiny_demo_root, 'training', 'video_qa.json'),
        'video_captioning':
        _annotations(tiny_demo_root, 'training', 'video_captioning.json'),
    }
    assert len(dataset) == len(meta)
    for i in range(len(dataset)):
        info = dataset.get_data_info(i)
        vid = info['video_id']
        assert info['filename'] == osp.join(root, 'videos', vid + '.mp4')
        assert info['domain'] == meta[vid]['domain']
        assert DEMO_DOMAINS[info['domain_id']] == info['domain']
        assert info['duration'] == meta[vid]['duration']
        assert info['tasks'] == {t for t, a in tasks.items() if vid in a}
        if vid in tasks['video_captioning']:
            assert [(c['start'], c['end']) for c in info['captions']] == [
                tuple(c['time'])
                for c in tasks['video_captioning'][vid]['captions']
            ]
    only_qa = DATASETS.build(
        dict(type='VideoDataset', data_root=root, tasks=['video_qa']))
    for info in only_qa:
        assert info['tasks'] <= {'video_qa'} and info['actions'] == []


def test_domain_filter(tiny_demo_root):
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/training',
            domains=['sports', 'news']))
    assert len(dataset) == 6
    assert {d['domain'] for d in dataset} == {'sports', 'news'}
    assert {d['domain_id'] for d in dataset} == {1, 3}
    with pytest.raises(ValueError, match="'cooking'.*not among"):
        DATASETS.build(
            dict(
                type='VideoDataset',
                data_root=tiny_demo_root + '/training',
                domains=['cooking']))


def test_bad_arguments_are_named(tiny_demo_root):
    with pytest.raises(ValueError, match="'captions'.*expected a subset"):
        VideoDataset(tiny_demo_root + '/training', tasks=['captions'])
    with pytest.raises(ValueError, match="on_bad_video='ignore'"):
        VideoDataset(tiny_demo_root + '/training', on_bad_video='ignore')


def test_lazy_init_still_has_vocabularies(tiny_demo_root):
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=tiny_demo_root + '/training',
            lazy_init=True))
    assert not dataset._fully_initialized
    assert len(dataset.metainfo['classes']) > 0
    assert len(dataset) == 12


@pytest.mark.parametrize('split_key', ['train_dataloader', 'test_dataloader'])
def test_demo_pipeline_outputs(tiny_demo_root, split_key):
    dataset = DATASETS.build(_demo_cfg(split_key, tiny_demo_root))
    assert dataset.vocab_root == osp.join(tiny_demo_root, 'training')
    actions = _annotations(tiny_demo_root, osp.basename(dataset.data_root),
                           'action_detection.json')
    classes = dataset.metainfo['classes']
    for i in range(len(dataset)):
        item = dataset[i]
        assert item['skipped'] == []
        inputs, sample = item['inputs'], item['data_samples']
        assert inputs.dtype == torch.uint8
        assert inputs.shape == (4, 3, 4, 64, 64)  # [N, C, T, H, W]
        assert isinstance(sample, VideoDataSample)
        times = np.asarray(sample.frame_times)
        assert sample.frame_inds.shape == (16, )
        assert np.allclose(times, sample.frame_inds / sample.avg_fps)
        assert sample.img_shape == (64, 64)
        labels = sample.gt_frame_labels
        assert labels.dtype == torch.long and labels.shape == (16, )
        vid = sample.video_id
        if vid not in actions:
            assert 'gt_segments' not in sample
            assert (labels == -1).all()
            continue
        segments = actions[vid]['actions']
        assert sample.gt_segments.shape == (len(segments), 2)
        # Every sampled frame carries the label of the segment at its time.
        for t, label in zip(times, labels.tolist()):
            covering = [
                s for s in segments if s['start'] <= t < s['end'] or (
                    s is segments[-1] and t == s['end'])
            ]
            assert len(covering) == 1
            assert classes[label] == covering[0]['label']


def test_test_mode_sampling_is_deterministic(tiny_demo_root):
    dataset = DATASETS.build(_demo_cfg('val_dataloader', tiny_demo_root))
    a, b = dataset[3], dataset[3]
    assert torch.equal(a['inputs'], b['inputs'])
    assert a['data_samples'].frame_inds.tolist() == \
        b['data_samples'].frame_inds.tolist()


def test_segment_at_times_rules():
    owner = segment_at_times([0.0, 0.99, 1.0, 2.0, 2.5, 3.0],
                             starts=[1.0, 0.0, 4.0],
                             ends=[3.0, 1.0, 5.0])
    assert owner.tolist() == [1, 1, 0, 0, 0, 0]
    assert segment_at_times([3.5], [1.0], [3.0]).tolist() == [-1]


def test_demo_argument_generates_only_for_its_root(tmp_path):
    demo = dict(
        root=str(tmp_path / 'demo'),
        videos_per_domain=dict(validation=1),
        frame_size=(48, 64),
        duration=(3.0, 3.5),
        workers=1)
    elsewhere = tmp_path / 'mine'
    (elsewhere / 'videos').mkdir(parents=True)
    with pytest.raises(ValueError, match='no videos in .*mine'):
        DATASETS.build(
            dict(type='VideoDataset', data_root=str(elsewhere), demo=demo))
    assert not (tmp_path / 'demo').exists()
    dataset = DATASETS.build(
        dict(
            type='VideoDataset',
            data_root=str(tmp_path / 'demo' / 'validation'),
            demo=demo))
    assert len(dataset) == 4
    assert (tmp_path / 'demo' / '.complete').is_file()
    with pytest.raises(ValueError, match='needs a "root" key'):
        DATASETS.build(
            dict(
                type='VideoDataset',
                data_root=str(elsewhere),
                demo=dict(seed=0)))


def _infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


def test_a_domain_filter_that_keeps_nothing_says_what_to_set(
        tiny_demo_root, tmp_path):
    """The README's own-data example: a folder of videos without
    metadata.json, trained with configs/hier_sports.py. Each way out that
    the error names is then taken."""
    root = tmp_path / 'mine'
    (root / 'videos').mkdir(parents=True)
    sources = sorted(glob.glob(f'{tiny_demo_root}/training/videos/*.mp4'))
    for src in sources[:2]:
        shutil.copy(src, root / 'videos')
    ids = sorted(osp.splitext(osp.basename(s))[0] for s in sources[:2])
    cfg = Config.fromfile(osp.join(REPO_CONFIGS, 'hier_sports.py'))
    cfg.train_dataloader.dataset.data_root = str(root)

    with pytest.raises(ValueError) as error:
        DATASETS.build(cfg.train_dataloader.dataset)
    message = str(error.value)
    assert "domains ('sports',)" in message
    assert "'general' (2)" in message
    assert 'train_dataloader.dataset.domains=None' in message
    assert str(root / 'annotations' / 'metadata.json') in message

    # every video, whatever its domain
    options = Config(cfg.to_dict())
    options.merge_from_dict({'train_dataloader.dataset.domains': None})
    infos = _infos(DATASETS.build(options.train_dataloader.dataset))
    assert sorted(d['video_id'] for d in infos) == ids
    assert {d['domain'] for d in infos} == {'general'}

    # metadata.json names the domain: the sports config takes the videos,
    # and a domain of the user's own is trained by naming it in `domains`
    (root / 'annotations').mkdir()
    for domain in ('sports', 'cooking'):
        (root / 'annotations' / 'metadata.json').write_text(json.dumps(
            [dict(video_id=v, domain=domain, duration=3.0) for v in ids]))
        cfg.train_dataloader.dataset.domains = [domain]
        dataset = DATASETS.build(cfg.train_dataloader.dataset)
        infos = _infos(dataset)
        assert sorted(d['video_id'] for d in infos) == ids
        assert {dataset.metainfo['domains'][d['domain_id']]
                for d in infos} == {domain}

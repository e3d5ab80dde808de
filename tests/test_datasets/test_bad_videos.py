"""Unreadable videos: skipped with a named warning, or a named error."""
import importlib.util
import json
import logging
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from mmengine.logging import MMLogger

from hvlm.datasets import VideoReadError, check_videos, video_collate
from hvlm.datasets.demo_data import _write_mp4
from hvlm.registry import DATASETS, FUNCTIONS

REPO = osp.join(osp.dirname(__file__), '..', '..')
PIPELINE = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=8, frame_interval=2),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 32)),
    dict(type='CenterCrop', crop_size=32),
    dict(type='FormatShape'),
    dict(type='PackVideoInputs'),
]
# kind -> words its reason must contain
BAD_KINDS = {
    'truncated': 'cannot open it as a video',
    'empty': 'file is empty (0 bytes)',
    'text': 'cannot open it as a video',
    'missing': 'file does not exist',
    'short': 'has 5 frames, fewer than clip_len=8',
}


@pytest.fixture(scope='module')
def bad_split(tiny_demo_root, tmp_path_factory):
    """A copy of the validation split with 5 of its 8 videos broken.

    Returns ``(split_root, {kind: filename})``.
    """
    root = str(tmp_path_factory.mktemp('bad') / 'validation')
    shutil.copytree(osp.join(tiny_demo_root, 'validation'), root)
    videos = sorted(os.listdir(osp.join(root, 'videos')))
    bad = {
        kind: osp.join(root, 'videos', name)
        for kind, name in zip(BAD_KINDS, videos)
    }
    with open(bad['truncated'], 'rb') as f:
        data = f.read()
    with open(bad['truncated'], 'wb') as f:
        f.write(data[:len(data) // 3])
    open(bad['empty'], 'wb').close()
    with open(bad['text'], 'w') as f:
        f.write('this is a text file, not a video\n')
    os.remove(bad['missing'])
    _write_mp4(bad['short'], np.full((5, 48, 64, 3), 128, np.uint8), 10)
    return root, bad


class _Records(logging.Handler):

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_logged():
    logger = MMLogger.get_current_instance()
    handler = _Records()
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


def _dataset(root, **kwargs):
    return DATASETS.build(
        dict(type='VideoDataset', data_root=root, pipeline=PIPELINE, **kwargs))


def _index(dataset, filename):
    return next(
        i for i in range(len(dataset))
        if dataset.get_data_info(i)['filename'] == filename)


def test_train_mode_skips_and_reports(bad_split, warnings_logged):
    root, bad = bad_split
    dataset = _dataset(root)
    good = [
        dataset.get_data_info(i)['filename'] for i in range(len(dataset))
        if dataset.get_data_info(i)['filename'] not in bad.values()
    ]
    assert len(good) == 3
    for kind, filename in bad.items():
        item = dataset[_index(dataset, filename)]
        assert item['inputs'].shape == (1, 3, 8, 32, 32)
        assert item['data_samples'].filename in good
        first_file, first_reason = item['skipped'][0]
        assert first_file == filename
        assert BAD_KINDS[kind] in first_reason
        assert {f for f, _ in item['skipped']} <= set(bad.values())
        assert any(filename in m and BAD_KINDS[kind] in m
                   for m in warnings_logged), (kind, warnings_logged)
    item = dataset[_index(dataset, good[0])]
    assert item['skipped'] == []


def test_test_mode_returns_placeholders(bad_split, warnings_logged):
    root, bad = bad_split
    dataset = _dataset(root, test_mode=True)
    for kind, filename in bad.items():
        item = dataset[_index(dataset, filename)]
        assert item['inputs'] is None and item['data_samples'] is None
        assert len(item['skipped']) == 1
        assert item['skipped'][0][0] == filename
        assert BAD_KINDS[kind] in item['skipped'][0][1]
    assert len(warnings_logged) == len(bad)


def test_error_mode_raises_naming_the_file(bad_split):
    root, bad = bad_split
    for test_mode in (False, True):
        dataset = _dataset(root, on_bad_video='error', test_mode=test_mode)
        for kind, filename in bad.items():
            with pytest.raises(VideoReadError) as info:
                dataset[_index(dataset, filename)]
            assert info.value.filename == filename
            assert filename in str(info.value)
            assert BAD_KINDS[kind] in str(info.value)


def test_collate_drops_placeholders(bad_split):
    root, bad = bad_split
    dataset = _dataset(root, test_mode=True)
    # the Runner looks collate_fn up by its type name, as here
    collate = FUNCTIONS.get('video_collate')
    batch = collate([dataset[i] for i in range(len(dataset))])
    assert len(batch['inputs']) == len(batch['data_samples']) == 3
    assert all(x.shape == (1, 3, 8, 32, 32) for x in batch['inputs'])
    assert sorted(f for f, _ in batch['skipped']) == sorted(bad.values())
    empty = video_collate(
        [dict(inputs=None, data_samples=None, skipped=[('a.mp4', 'gone')])])
    assert empty == dict(
        inputs=[], data_samples=[], skipped=[('a.mp4', 'gone')])


def test_dataloader_workers_skip_bad_videos(bad_split):
    """Readers opened in forked workers: no hang, placeholders dropped."""
    root, bad = bad_split
    loader = torch.utils.data.DataLoader(
        _dataset(root, test_mode=True),
        batch_size=3,
        num_workers=2,
        collate_fn=video_collate,
        multiprocessing_context='fork',
        timeout=60)
    batches = list(loader)
    assert sum(len(b['inputs']) for b in batches) == 3
    skipped = [f for b in batches for f, _ in b['skipped']]
    assert sorted(skipped) == sorted(bad.values())


def test_check_videos_lists_exactly_the_bad_files(bad_split, tiny_demo_root):
    root, bad = bad_split
    found = check_videos(_dataset(root), verbose=False)
    assert sorted(f for f, _ in found) == sorted(bad.values())
    reasons = dict(found)
    for kind, filename in bad.items():
        assert BAD_KINDS[kind] in reasons[filename]
    clean = _dataset(osp.join(tiny_demo_root, 'validation'))
    assert check_videos(clean, verbose=False) == []


def _tool():
    spec = importlib.util.spec_from_file_location(
        'check_videos_tool',
        osp.join(REPO, 'tools', 'analysis_tools', 'check_videos.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_videos_tool(bad_split, tiny_demo_root, tmp_path, capsys):
    root, bad = bad_split
    config = osp.join(REPO, 'configs', '_base_', 'datasets', 'hvlm_demo.py')
    vocab = osp.join(tiny_demo_root, 'training')
    out = str(tmp_path / 'bad.json')
    tool = _tool()
    code = tool.main([
        config, '--split', 'test', '--out', out, '--cfg-options',
        f'test_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.vocab_root={vocab}',
        # clips of 8 frames, so that the 5-frame video is too short
        'test_dataloader.dataset.pipeline.1.clip_len=8'
    ])
    assert code == 1
    printed = capsys.readouterr().out
    for filename in bad.values():
        assert f'UNREADABLE {filename}' in printed
    assert '5 of 8 videos unreadable' in printed
    with open(out) as f:
        assert sorted(e['filename']
                      for e in json.load(f)) == sorted(bad.values())
    code = tool.main([
        config, '--split', 'val', '--cfg-options',
        f'val_dataloader.dataset.data_root={tiny_demo_root}/validation'
    ])  # vocab_root='training' of the config: the sibling split
    assert code == 0
    assert '0 of 8 videos unreadable' in capsys.readouterr().out

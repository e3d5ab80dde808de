"""ImageFolderDataset: demo images on first use, classes, split lists,
few shots, unlabelled mode, and unreadable images skipped and counted."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch

from hvlm.datasets import DEMO_IMAGE_CLASSES, video_collate
from hvlm.datasets.demo_images import render_image
from hvlm.registry import DATASETS, MODELS

PIPELINE = [
    dict(type='LoadImageFile'),
    dict(type='ResizeImage', scale=(16, 20)),
    dict(type='PackImageInputs'),
]


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    return str(tmp_path_factory.mktemp('images') / 'demo')


def build(root, split='training', **kwargs):
    return DATASETS.build(
        dict(type='ImageFolderDataset', data_root=f'{root}/{split}',
             demo=dict(root=root, images_per_class=dict(training=4,
                                                        validation=2),
                       size=24),
             pipeline=PIPELINE, **kwargs))


def test_demo_images_generated_and_read(demo_root):
    ds = build(demo_root)
    assert ds.metainfo['classes'] == tuple(sorted(DEMO_IMAGE_CLASSES))
    assert len(ds) == 4 * len(DEMO_IMAGE_CLASSES)
    item = ds[0]
    assert item['inputs'].shape == (3, 16, 20) and item['skipped'] == []
    info = ds.get_data_info(0)
    assert info['label'] == ds.metainfo['classes'].index(info['class_name'])
    assert item['data_samples'].gt_label.item() == info['label']
    # a second build reuses the files (same bytes, deterministic renderer)
    before = os.path.getmtime(info['filename'])
    build(demo_root)
    assert os.path.getmtime(info['filename']) == before
    np.testing.assert_array_equal(render_image(0, 'training', 'disc',
                                               1, 24),
                                  render_image(0, 'training', 'disc',
                                               1, 24))
    # validation uses the training split's classes
    val = build(demo_root, 'validation', vocab_root='training',
                test_mode=True)
    assert val.metainfo['classes'] == ds.metainfo['classes']


def test_shots_split_file_and_unlabelled(demo_root, tmp_path):
    ds = build(demo_root, shots_per_class=2, shot_seed=1)
    labels = [ds.get_data_info(i)['label'] for i in range(len(ds))]
    assert np.bincount(labels).tolist() == [2] * len(DEMO_IMAGE_CLASSES)
    other = build(demo_root, shots_per_class=2, shot_seed=2)
    assert {ds.get_data_info(i)['filename'] for i in range(len(ds))} != \
        {other.get_data_info(i)['filename'] for i in range(len(other))}

    split = tmp_path / 'split.txt'
    split.write_text('# two images\ndisc/training_disc_0000.png'
                     '\n\nsquare/training_square_0001.png\n')
    ds = build(demo_root, split_file=str(split))
    assert [ds.get_data_info(i)['class_name'] for i in range(2)] == \
        ['disc', 'square'] and len(ds) == 2
    split.write_text('disc/a.png\nnot_a_class/b.png\n')
    with pytest.raises(ValueError, match='split.txt, line 2'):
        build(demo_root, split_file=str(split))

    ds = build(demo_root, labelled=False)
    assert len(ds) == 4 * len(DEMO_IMAGE_CLASSES)
    assert ds[0]['data_samples'].gt_label.item() == -1


def test_unknown_class_folder_is_an_error(demo_root, tmp_path):
    root = tmp_path / 'data'
    shutil.copytree(f'{demo_root}/training', root / 'training')
    shutil.copytree(f'{demo_root}/validation', root / 'validation')
    os.makedirs(root / 'validation' / 'zebra')
    with pytest.raises(ValueError, match=r"\['zebra'\]"):
        DATASETS.build(dict(type='ImageFolderDataset',
                            data_root=str(root / 'validation'),
                            vocab_root='training', pipeline=PIPELINE))


def test_unreadable_images_skipped_counted_never_deleted(demo_root, tmp_path):
    root = tmp_path / 'bad'
    shutil.copytree(f'{demo_root}/validation', root)
    empty = root / 'disc' / 'empty.png'
    empty.write_bytes(b'')
    text = root / 'disc' / 'text.png'
    text.write_text('not an image')
    ds = DATASETS.build(dict(type='ImageFolderDataset', data_root=str(root),
                             pipeline=PIPELINE, test_mode=True))
    items = [ds[i] for i in range(len(ds))]
    batch = video_collate(items)
    assert len(batch['inputs']) == len(ds) - 2
    assert sorted(osp.basename(f) for f, _ in batch['skipped']) == \
        ['empty.png', 'text.png']
    assert empty.exists() and text.read_text() == 'not an image'
    # training: another image replaces the bad one, and the skip is listed
    train = DATASETS.build(dict(type='ImageFolderDataset',
                                data_root=str(root), pipeline=PIPELINE))
    bad = [i for i in range(len(train))
           if train.get_data_info(i)['filename'] == str(empty)][0]
    item = train[bad]
    assert item['inputs'] is not None
    assert item['skipped'][0][0] == str(empty)
    strict = DATASETS.build(dict(type='ImageFolderDataset',
                                 data_root=str(root), pipeline=PIPELINE,
                                 on_bad_image='error'))
    with pytest.raises(RuntimeError, match='empty.png'):
        strict[bad]


def test_frame_pairs_from_videos_for_simclr(tiny_demo_root):
    """Two frames from two clips of one video, packed as images: the
    positive pair of SimCLR on hvlm's video layout."""
    ds = DATASETS.build(dict(
        type='VideoDataset', data_root=f'{tiny_demo_root}/training',
        tasks=(), pipeline=[
            dict(type='DecordInit'),
            dict(type='SampleFrames', clip_len=1, num_clips=2),
            dict(type='DecordDecode'),
            dict(type='Resize', scale=(24, 24), keep_ratio=False),
            dict(type='PackFrames'),
        ]))
    item = ds[0]
    assert item['inputs'].shape == (2, 3, 24, 24)
    assert item['inputs'].dtype == torch.uint8
    inds = item['data_samples'].frame_inds
    # one frame from each half of the video
    assert inds[0] < inds[1]
    views = MODELS.build(dict(type='SimCLRViews', crop_size=16))
    out, _ = views(torch.stack([item['inputs'], item['inputs']]).float() /
                   255, [None, None])
    assert out.shape == (2, 2, 3, 16, 16)

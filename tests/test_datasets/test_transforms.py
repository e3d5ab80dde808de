import numpy as np
import pytest
import torch

from hvlm.datasets import VideoReadError
from hvlm.registry import TRANSFORMS


def _build(**cfg):
    return TRANSFORMS.build(cfg)


def _clip(n=4, h=30, w=40):
    """``[n, h, w, 3]`` frames whose pixels encode (frame, row, column)."""
    t, y, x = np.meshgrid(
        np.arange(n), np.arange(h), np.arange(w), indexing='ij')
    return np.stack([t * 10, y * 2, x * 2], axis=-1).astype(np.uint8)


@pytest.mark.parametrize('test_mode', [False, True])
def test_sample_frames(test_mode):
    sample = _build(
        type='SampleFrames',
        clip_len=4,
        frame_interval=3,
        num_clips=3,
        test_mode=test_mode)
    for _ in range(20):
        out = sample(dict(total_frames=100, avg_fps=8.0, filename='v.mp4'))
        inds = out['frame_inds']
        assert inds.shape == (12, ) and inds.dtype == np.int64
        clips = inds.reshape(3, 4)
        assert (np.diff(clips, axis=1) == 3).all()
        assert (np.diff(clips[:, 0]) > 0).all()  # clips in time order
        assert inds.min() >= 0 and inds.max() <= 99
        assert np.allclose(out['frame_times'], inds / 8.0)
        assert (out['clip_len'], out['num_clips'],
                out['frame_interval']) == (4, 3, 3)
    if test_mode:
        assert clips[0, 0] == 0 and clips[-1, -1] == 99


def test_sample_frames_shrinks_interval_and_rejects_short_videos():
    sample = _build(type='SampleFrames', clip_len=8, frame_interval=4)
    out = sample(dict(total_frames=20, avg_fps=10.0, filename='v.mp4'))
    assert out['frame_interval'] == 2  # 7 * 2 + 1 = 15 <= 20 frames
    assert out['frame_inds'].max() < 20
    exact = sample(dict(total_frames=8, avg_fps=10.0, filename='v.mp4'))
    assert exact['frame_inds'].tolist() == list(range(8))
    with pytest.raises(
            VideoReadError,
            match='v.mp4.*has 7 frames, fewer than clip_len=8'):
        sample(dict(total_frames=7, avg_fps=10.0, filename='v.mp4'))
    with pytest.raises(ValueError, match='clip_len=0'):
        _build(type='SampleFrames', clip_len=0)


def test_resize_modes():
    imgs = _clip(h=30, w=40)
    short = _build(type='Resize', scale=(-1, 15))(dict(imgs=imgs))
    assert short['imgs'].shape == (4, 15, 20, 3)
    assert short['img_shape'] == (15, 20)
    fit = _build(type='Resize', scale=(100, 20))(dict(imgs=imgs))
    assert fit['imgs'].shape == (4, 20, 27, 3)
    exact = _build(
        type='Resize', scale=(16, 8), keep_ratio=False)(
            dict(imgs=imgs))
    assert exact['imgs'].shape == (4, 8, 16, 3)
    # frames stay frames: the frame index channel is untouched
    assert (exact['imgs'][..., 0] == np.arange(4)[:, None, None] * 10).all()
    many = np.repeat(_clip(n=1), 300, axis=0)  # > cv2's channel limit
    out = _build(type='Resize', scale=(-1, 15))(dict(imgs=many))
    assert out['imgs'].shape == (300, 15, 20, 3)
    assert (out['imgs'] == out['imgs'][:1]).all()
    with pytest.raises(ValueError, match='scale=\\(-1, 64\\) with keep_'):
        _build(type='Resize', scale=(-1, 64), keep_ratio=False)


def test_crops():
    imgs = _clip(h=30, w=40)
    for _ in range(20):
        out = _build(type='RandomResizedCrop')(dict(imgs=imgs))
        h, w = out['img_shape']
        x1, y1, x2, y2 = out['crop_bbox']
        assert (y2 - y1, x2 - x1) == (h, w)
        assert 0.6 * 1200 * 0.9 <= h * w <= 1200
        assert 3 / 4 - 0.1 <= w / h <= 4 / 3 + 0.1
        assert (out['imgs'][:, :, :, 2] == (np.arange(x1, x2) * 2)).all()
    center = _build(type='CenterCrop', crop_size=20)(dict(imgs=imgs))
    assert center['imgs'].shape == (4, 20, 20, 3)
    assert center['crop_bbox'].tolist() == [10, 5, 30, 25]
    with pytest.raises(ValueError, match='larger than the frames'):
        _build(type='CenterCrop', crop_size=50)(dict(imgs=imgs))


def test_flip_mirrors_frames_and_swaps_labels():
    flip = _build(
        type='Flip',
        flip_ratio=1.0,
        flip_label_map=dict(roll_left='roll_right'))
    classes = ('rest', 'roll_left', 'roll_right')
    actions = [
        dict(start=0, end=1, label='roll_right', label_id=2),
        dict(start=1, end=2, label='roll_left', label_id=1),
        dict(start=2, end=3, label='rest', label_id=0),
    ]
    imgs = _clip()
    out = flip(dict(imgs=imgs, actions=actions, classes=classes))
    assert out['flip'] is True
    assert (out['imgs'] == imgs[:, :, ::-1]).all()
    assert [(a['label'], a['label_id'])
            for a in out['actions']] == [('roll_left', 1), ('roll_right', 2),
                                         ('rest', 0)]
    never = _build(type='Flip', flip_ratio=0.0)(dict(imgs=imgs))
    assert never['flip'] is False and never['imgs'] is imgs


def test_format_shape_and_pack():
    imgs = _clip(n=6)  # 2 clips x 3 frames
    results = dict(
        imgs=imgs,
        num_clips=2,
        clip_len=3,
        frame_times=np.array([0.0, 0.5, 1.0, 1.5, 2.0, 9.0]),
        frame_inds=np.arange(6),
        video_id='v',
        domain='news',
        domain_id=3,
        tasks={'action_detection', 'video_qa'},
        actions=[
            dict(start=0.0, end=1.0, label='a', label_id=4, confidence=1.0),
            dict(start=1.0, end=2.0, label='b', label_id=-1, confidence=1.0)
        ],
        qa_pairs=[dict(question='q?', answer='x', answer_id=0)],
        captions=[dict(text='ignored', start=0.0, end=1.0)])
    out = _build(type='FormatShape')(results)
    assert out['imgs'].shape == (2, 3, 3, 30, 40)  # [N, C, T, H, W]
    assert (out['imgs'][1, 0, 2] == 50).all()  # clip 1, frame 2 = frame 5
    packed = _build(type='PackVideoInputs')(out)
    sample = packed['data_samples']
    assert packed['inputs'].dtype == torch.uint8
    assert packed['inputs'].shape == (2, 3, 3, 30, 40)
    assert sample.gt_frame_labels.tolist() == [4, 4, -1, -1, -1, -1]
    assert sample.gt_segments.tolist() == [[0.0, 1.0], [1.0, 2.0]]
    assert sample.gt_segment_labels.tolist() == [4, -1]
    assert sample.gt_qa == results['qa_pairs']
    assert 'gt_captions' not in sample  # captioning not annotated
    assert sample.tasks == ['action_detection', 'video_qa']
    assert (sample.domain, sample.domain_id) == ('news', 3)
    with pytest.raises(ValueError, match='num_clips=4 x clip_len=3'):
        _build(type='FormatShape')(dict(imgs=imgs, num_clips=4, clip_len=3))


def test_pack_without_actions_gives_ignore_labels():
    packed = _build(type='PackVideoInputs')(
        dict(
            imgs=np.zeros((1, 3, 2, 4, 4), np.uint8),
            frame_times=np.array([0.0, 1.0]),
            tasks=set()))
    sample = packed['data_samples']
    assert sample.gt_frame_labels.tolist() == [-1, -1]
    assert 'gt_segments' not in sample and 'gt_qa' not in sample

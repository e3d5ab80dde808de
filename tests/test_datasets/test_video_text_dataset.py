"""VideoTextDataset pairs segments with captions; SampleSegmentFrames
stays inside the segment; SampleText picks the text as documented."""
import json

import numpy as np
import pytest

from hvlm.datasets import VideoTextDataset
from hvlm.datasets.transforms import SampleSegmentFrames, SampleText


def write_split(root, actions, captions):
    (root / 'annotations').mkdir(parents=True)
    (root / 'videos').mkdir()
    meta = [dict(video_id='v0', domain='sports', duration=10.)]
    (root / 'annotations' / 'metadata.json').write_text(json.dumps(meta))
    (root / 'annotations' / 'action_detection.json').write_text(
        json.dumps([dict(video_id='v0', actions=actions)]))
    (root / 'annotations' / 'video_captioning.json').write_text(
        json.dumps([dict(video_id='v0', captions=captions)]))


def test_segments_pair_with_the_best_overlapping_caption(tmp_path):
    write_split(
        tmp_path,
        actions=[
            dict(start=0., end=4., label='roll_right'),
            dict(start=4., end=6., label='spin'),
            dict(start=6., end=6.1, label='rest'),  # shorter than 0.2 s
        ],
        captions=[
            dict(text='it rolls', time=[0.5, 4.]),  # IoU .875 with action 0
            dict(text='far off', time=[3., 9.]),  # IoU 1/3 with spin
            dict(text='late', time=[8., 10.]),  # pairs with nothing
        ])
    ds = VideoTextDataset(data_root=str(tmp_path))
    items = [ds.get_data_info(i) for i in range(len(ds))]
    assert [(d['segment'], d['label'], d['caption']) for d in items] == [
        ((0., 4.), 'roll_right', 'it rolls'),
        ((4., 6.), 'spin', None),
        ((3., 9.), None, 'far off'),
        ((8., 10.), None, 'late'),
    ]
    assert items[0]['label_text'] == 'a video of roll right.'
    assert items[0]['class_texts'] == [
        'a video of rest.', 'a video of roll right.', 'a video of spin.'
    ]
    assert items[2]['label_id'] == -1
    kept = VideoTextDataset(data_root=str(tmp_path),
                            exclude_labels=['spin'])
    assert [kept.get_data_info(i)['label'] for i in range(len(kept))] == [
        'roll_right', None, None]
    assert 'spin' in kept.metainfo['classes']
    with pytest.raises(ValueError, match='jump'):
        VideoTextDataset(data_root=str(tmp_path), exclude_labels=['jump'])
    with pytest.raises(ValueError, match='exactly one'):
        VideoTextDataset(data_root=str(tmp_path), label_template='{} {}')


def test_segment_frames_stay_inside_the_segment():
    t = SampleSegmentFrames(clip_len=4, frame_interval=3)
    np.random.seed(0)
    for _ in range(20):
        out = t(dict(total_frames=100, avg_fps=10., segment=(2.0, 5.0)))
        assert out['frame_inds'].min() >= 20 and out['frame_inds'].max() < 50
        assert out['total_frames'] == 100
        np.testing.assert_allclose(out['frame_times'],
                                   out['frame_inds'] / 10.)
    # a segment too short for the clip: a smaller interval
    out = SampleSegmentFrames(clip_len=4, frame_interval=3, test_mode=True)(
        dict(total_frames=100, avg_fps=10., segment=(2.0, 2.5)))
    assert out['frame_inds'].tolist() == [20, 21, 22, 23]
    from hvlm.datasets import VideoReadError
    with pytest.raises(VideoReadError, match='segment'):
        t(dict(total_frames=100, avg_fps=10., segment=(2.0, 2.2),
               filename='x.mp4'))


def test_sample_text():
    both = dict(caption='c', label_text='l')
    assert SampleText(test_mode=True)(dict(both))['text'] == 'c'
    assert SampleText()(dict(caption=None, label_text='l'))['text'] == 'l'
    np.random.seed(0)
    picks = [SampleText(caption_prob=0.3)(dict(both))['text']
             for _ in range(400)]
    assert 0.22 < picks.count('c') / 400 < 0.38
    with pytest.raises(ValueError, match='neither'):
        SampleText()(dict(caption=None, label_text=None))

"""tools/analysis_tools/browse_dataset.py: the drawn frames are the frames
decord decodes at the sampled indices, with their annotations."""
import json
import os.path as osp

import cv2
import decord
import numpy as np
import pytest
from mmengine.config import Config

from hvlm.analysis.dataset_browser import (build_split_dataset, frame_grid,
                                           load_video)
from .conftest import TINY, data_options, run_tool


def decode(filename, inds):
    """RGB uint8 [N, H, W, 3] straight from decord."""
    return decord.VideoReader(filename).get_batch(list(inds)).asnumpy()


def val_view(frames):
    """The val pipeline's geometry, redone with cv2 alone: short side to 64
    (bilinear), then the centre 64x64."""
    n, h, w, _ = frames.shape
    factor = 64 / min(h, w)
    size = (int(w * factor + 0.5), int(h * factor + 0.5))  # (w, h)
    out = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_LINEAR)
                    for f in frames])
    y, x = (size[1] - 64) // 2, (size[0] - 64) // 2
    return out[:, y:y + 64, x:x + 64]


def close(a, b, tol=2):
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max()
    assert diff <= tol, f'max pixel difference {diff}'


def expected_labels(root, video_id, times):
    """Action label at each time from action_detection.json (closed
    intervals; the later start wins on a shared boundary)."""
    with open(osp.join(root, 'annotations', 'action_detection.json')) as f:
        entry = next(e for e in json.load(f) if e['video_id'] == video_id)
    actions = sorted(entry['actions'], key=lambda a: a['start'])
    labels = []
    for t in times:
        covering = [a['label'] for a in actions if a['start'] <= t <= a['end']]
        labels.append(covering[-1] if covering else '')
    return labels


def test_browse_val_split(tiny_demo_root, tmp_path):
    out = tmp_path / 'browse'
    proc = run_tool('analysis_tools/browse_dataset.py', TINY, '--split',
                    'val', '--output-dir', out, '--max-videos', 2,
                    '--scale', 2, '--cfg-options',
                    *data_options(tiny_demo_root))
    assert f'wrote 2 images (pipeline, val split) to {out}' in proc.stdout

    cfg = Config.fromfile(TINY)
    cfg.merge_from_dict(
        dict(o.split('=', 1) for o in data_options(tiny_demo_root)))
    dataset = build_split_dataset(cfg, 'val')
    sampler = next(t for t in dataset.pipeline.transforms
                   if type(t).__name__ == 'SampleFrames')
    root = osp.join(tiny_demo_root, 'validation')
    for index in range(2):
        video = load_video(dataset, index)
        assert video.filename == osp.join(root, 'videos',
                                          video.video_id + '.mp4')
        raw = decode(video.filename, video.frame_inds)
        # num_clips clips of clip_len frames, frame_interval apart
        assert video.clip_len == sampler.clip_len
        assert len(video.frame_inds) == sampler.clip_len * sampler.num_clips
        clips = video.frame_inds.reshape(sampler.num_clips, -1)
        assert np.all(np.diff(clips, axis=1) == sampler.frame_interval)
        np.testing.assert_array_equal(video.decoded, raw)
        close(video.frames, val_view(raw))

        grid, corners = frame_grid(video.frames, ncols=video.clip_len,
                                   scale=2)
        image = cv2.imread(
            str(out / f'{index:04d}_{video.video_id}.png'))[..., ::-1]
        for (x, y), frame in zip(corners, val_view(raw)):
            big = frame.repeat(2, axis=0).repeat(2, axis=1)  # [128, 128, 3]
            close(grid[y:y + 128, x:x + 128], big)
            # and the written image shows those pixels
            close(image[y:y + 128, x:x + 128], big)

        assert video.frame_labels == expected_labels(root, video.video_id,
                                                     video.frame_times)
        assert any(video.frame_labels)
        with open(osp.join(root, 'annotations', 'metadata.json')) as f:
            meta = {e['video_id']: e for e in json.load(f)}
        assert video.domain == meta[video.video_id]['domain'] == 'sports'
        with open(osp.join(root, 'annotations', 'video_qa.json')) as f:
            qa = {e['video_id']: e['qa_pairs'] for e in json.load(f)}
        assert [(q['question'], q['answer']) for q in video.qa_pairs] == [
            (q['question'], q['answer']) for q in qa[video.video_id]
        ]


def test_original_phase_and_bad_split(tiny_demo_root, tmp_path):
    out = tmp_path / 'original'
    proc = run_tool('analysis_tools/browse_dataset.py', TINY, '--phase',
                    'original', '--output-dir', out, '--max-videos', 1,
                    '--cfg-options', *data_options(tiny_demo_root))
    assert 'wrote 1 images (original, train split)' in proc.stdout
    written = sorted(out.glob('0000_*.png'))
    assert len(written) == 1
    image = cv2.imread(str(written[0]))
    # a row per clip of 48x64 frames shown twice as large (auto scale: the
    # short side gets >= 96 pixels)
    sampler = Config.fromfile(TINY).train_pipeline[1]
    assert sampler['type'] == 'SampleFrames'
    assert image.shape[1] >= sampler['clip_len'] * 128
    assert image.shape[0] > sampler['num_clips'] * 96

    cfg = Config.fromfile(TINY)
    cfg.test_dataloader = None
    with pytest.raises(KeyError, match='the config has no test_dataloader'):
        build_split_dataset(cfg, 'test')

"""Bad input gets a clear answer before or during training, never a crash."""
import json
from pathlib import Path

import pytest

from .conftest import TINY, data_options, find_one, run_tool


def sports_videos(root, split='training'):
    meta = json.loads(
        Path(root, split, 'annotations', 'metadata.json').read_text())
    return [
        Path(root, split, 'videos', f"{m['video_id']}.mp4") for m in meta
        if m['domain'] == 'sports'
    ]


def test_corrupt_videos_are_skipped_and_counted(demo_copy, tmp_path):
    videos = sports_videos(demo_copy)
    truncated, empty = videos[0], videos[1]
    truncated.write_bytes(truncated.read_bytes()[:300])
    empty.write_bytes(b'')
    work = tmp_path / 'work'
    run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
             *data_options(demo_copy), 'train_cfg.max_epochs=1')
    log = find_one(work, '*.log').read_text()
    assert 'unreadable video' in log
    assert truncated.name in log or empty.name in log
    assert (work / 'epoch_1.pth').is_file()


def test_strict_mode_fails_naming_the_file(demo_copy, tmp_path):
    for video in sports_videos(demo_copy):
        video.write_text('this is not a video')
    proc = run_tool(
        'train.py', TINY, '--work-dir', tmp_path / 'work', '--cfg-options',
        *data_options(demo_copy), 'train_dataloader.dataset.on_bad_video=error',
        check=False)
    assert proc.returncode != 0
    assert '.mp4' in proc.stderr


def test_malformed_annotation_fails_before_training(demo_copy, tmp_path):
    path = Path(demo_copy, 'training', 'annotations', 'action_detection.json')
    entries = json.loads(path.read_text())
    entries[1]['actions'][0]['end'] = entries[1]['actions'][0]['start'] - 1
    path.write_text(json.dumps(entries))
    proc = run_tool('train.py', TINY, '--work-dir', tmp_path / 'work',
                    '--cfg-options', *data_options(demo_copy), check=False)
    assert proc.returncode != 0
    assert 'action_detection.json' in proc.stderr
    assert 'entry 1' in proc.stderr and 'end' in proc.stderr
    assert not (tmp_path / 'work' / 'epoch_1.pth').exists()


def test_unknown_type_names_config_key(tmp_path):
    proc = run_tool('train.py', TINY, '--work-dir', tmp_path / 'work',
                    '--cfg-options', 'model.backbone.attention.type=FullAtention',
                    check=False)
    assert proc.returncode != 0
    assert 'model.backbone.attention.type' in proc.stderr
    assert 'FullAttention' in proc.stderr


def test_check_videos_lists_unreadable(demo_copy):
    bad = sports_videos(demo_copy, 'validation')[0]
    bad.write_bytes(b'\x00' * 100)
    proc = run_tool('analysis_tools/check_videos.py', TINY, '--split', 'val',
                    '--cfg-options', *data_options(demo_copy), check=False)
    assert proc.returncode == 1
    assert bad.name in proc.stdout


@pytest.mark.parametrize('tool, options, named', [
    ('train.py', ['train_cfg.max_epochs'], ["'train_cfg.max_epochs'",
                                            'expected KEY=VALUE']),
    ('train.py', ['train_cfg.max_epochs='], ["'train_cfg.max_epochs='",
                                             'the value is empty']),
    ('train.py', ['train_cfg.max_epochs=-1', 'optim_wrapper.optimizer.lrr=0.1'],
     ['train_cfg.max_epochs = -1: expected a positive integer',
      "optim_wrapper.optimizer.lrr: AdamW has no argument 'lrr'; did you "
      "mean 'lr'?"]),
    ('test.py', ['model.backbone.depths=(1,1'], ['cannot parse the value']),
])
def test_config_mistakes_exit_2_before_anything_is_built(
        tmp_path, tool, options, named):
    work = tmp_path / 'work'
    missing = tmp_path / 'no_data'  # building a dataset would fail on it
    args = [tool, TINY] + (['ckpt.pth'] if tool == 'test.py' else [])
    proc = run_tool(*args, '--work-dir', work, '--cfg-options',
                    *data_options(missing), *options, check=False)
    assert proc.returncode == 2, proc.stderr
    assert f'\n{tool}: error: ' in '\n' + proc.stderr
    for text in named:
        assert text in proc.stderr
    assert 'Traceback' not in proc.stderr
    assert 'VideoDataset' not in proc.stderr + proc.stdout
    assert not work.exists()

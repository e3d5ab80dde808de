"""tools/inference.py as users run it: a demo .mp4, a checkpoint from a
real training run, JSON on stdout, a timeline PNG, and clear errors."""
import json

import pytest
from matplotlib.image import imread

from tests.test_apis.conftest import tiny_checkpoint_path
from .conftest import TINY, run_tool


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory, tiny_demo_root):
    return tiny_checkpoint_path(tmp_path_factory, tiny_demo_root)


@pytest.fixture
def video(tiny_demo_root):
    return f'{tiny_demo_root}/test/videos/sports_test_0001.mp4'


def test_inference_prints_json_and_draws_a_timeline(video, checkpoint,
                                                    tmp_path):
    out, show = tmp_path / 'out' / 'result.json', tmp_path / 'show'
    proc = run_tool('inference.py', video, TINY, checkpoint, '--task', 'all',
                    '--question', 'what happens first?', '--out', out,
                    '--show-dir', show)
    result = json.loads(proc.stdout)  # stdout is the JSON alone
    assert json.loads(out.read_text()) == result
    assert result['video'] == video
    assert result['tasks'] == ['action_detection', 'qa', 'captioning']
    duration = result['duration']
    assert duration == pytest.approx(result['num_frames'] / result['fps'])
    assert result['num_clips'] >= 2

    det = result['action_detection']
    times = det['frames']['time']
    assert len(times) == len(det['frames']['actionness']) == \
        len(det['frames']['label']) == len(det['frames']['score'])
    assert 0 <= times[0] < times[-1] < duration
    assert all(0 <= a <= 1 for a in det['frames']['actionness'])
    for seg in det['segments']:
        assert 0 <= seg['start'] < seg['end'] <= duration
        assert 0 <= seg['score'] <= 1 and isinstance(seg['label'], str)
    qa = result['qa']
    assert qa['question'] == 'what happens first?'
    assert isinstance(qa['answer'], str) and 0 <= qa['score'] <= 1
    captions = result['captioning']['captions']
    assert captions
    for caption in captions:
        assert 0 <= caption['start'] <= caption['end'] <= duration
        assert isinstance(caption['text'], str)

    png = show / 'sports_test_0001_timeline.png'
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn


def test_inference_names_a_missing_video(checkpoint, tmp_path):
    missing = tmp_path / 'missing.mp4'
    proc = run_tool('inference.py', missing, TINY, checkpoint, check=False)
    assert proc.returncode != 0 and proc.stdout == ''
    assert f'{missing}: file does not exist' in proc.stderr


def test_inference_names_a_corrupt_video(checkpoint, tmp_path):
    corrupt = tmp_path / 'corrupt.mp4'
    corrupt.write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'garbage' * 100)
    proc = run_tool('inference.py', corrupt, TINY, checkpoint, check=False)
    assert proc.returncode != 0 and proc.stdout == ''
    assert f'cannot read video {corrupt}' in proc.stderr


@pytest.mark.parametrize('args,message', [
    (('--task', 'qa'), '--task qa needs --question'),
    (('--task', 'detect'), "invalid choice: 'detect'"),
])
def test_inference_rejects_bad_options(video, args, message):
    proc = run_tool('inference.py', video, TINY, 'unused.pth', *args,
                    check=False)
    assert proc.returncode == 2 and message in proc.stderr

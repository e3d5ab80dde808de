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

    # the demo layout around the video has its ground truth
    assert result['ground_truth']['actions']
    assert result['config'] == TINY and result['checkpoint'] == \
        str(checkpoint)
    # 'happens' is not in the tiny model's vocabulary
    assert result['qa']['unknown_words'] == ['happens']
    assert "inference.py: warning: the question has words the model " \
        "never saw in training: 'happens'" in proc.stderr

    png = show / 'sports_test_0001_timeline.png'
    image = imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0  # something was drawn


def test_inference_flags_reach_the_result(video, checkpoint, tmp_path):
    ann = tmp_path / 'action_detection.json'
    ann.write_text(json.dumps([dict(video_id='sports_test_0001', actions=[
        dict(start=0.5, end=1.25, label='spin')])]))
    proc = run_tool('inference.py', video, TINY, checkpoint, '--task',
                    'action_detection', '--device', 'cpu', '--score-thr',
                    '0.9', '--max-segments', '3', '--ann-file', ann,
                    '--domain', 'none', '--no-progress', '--cfg-options',
                    'model.head.heads.action_detection.nms_iou=0.3')
    result = json.loads(proc.stdout)
    det = result['action_detection']
    # the 1-epoch tiny model scores nothing near 0.9
    assert det['segments'] == [] and det['score_thr'] == 0.9
    assert det['max_segments'] == 3
    assert result['ground_truth'] == dict(actions=[
        dict(start=0.5, end=1.25, label='spin')])
    assert result['domain'] == dict(name=None, source='argument')


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


def test_inference_names_a_domain_the_model_lacks(video, checkpoint):
    proc = run_tool('inference.py', video, TINY, checkpoint, '--domain',
                    'sports', check=False)
    assert proc.returncode != 0 and proc.stdout == ''
    assert "domain='sports', but the model has no domain modules" in \
        proc.stderr


@pytest.mark.parametrize('args,message', [
    (('--task', 'qa'), '--task qa needs --question'),
    (('--task', 'detect'), "invalid choice: 'detect'"),
    (('--score-thr', '2'), '--score-thr 2.0 must be in [0, 1]'),
    (('--max-segments', '0'), '--max-segments 0 must be >= 1'),
])
def test_inference_rejects_bad_options(video, args, message):
    proc = run_tool('inference.py', video, TINY, 'unused.pth', *args,
                    check=False)
    assert proc.returncode == 2 and message in proc.stderr

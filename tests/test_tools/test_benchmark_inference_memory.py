"""tools/analysis_tools/benchmark_inference_memory.py on the tiny model:
real looped videos, one fresh process per length, 1x as the baseline."""
import json

import decord
import pytest

from hvlm.analysis.inference_memory import loop_video
from tests.test_apis.conftest import tiny_checkpoint_path
from .conftest import TINY, run_tool


def test_loop_video_repeats_every_frame(tiny_demo_root, tmp_path):
    src = f'{tiny_demo_root}/test/videos/sports_test_0000.mp4'
    made = loop_video(src, str(tmp_path / 'x3.mp4'), 3)
    short, long = decord.VideoReader(src), decord.VideoReader(
        str(tmp_path / 'x3.mp4'))
    assert len(long) == made['frames'] == 3 * len(short)
    assert made['duration'] == pytest.approx(len(long) / made['fps'])
    # the second pass starts with the first frame again
    first, again = long.get_batch([0, len(short)]).asnumpy().astype(int)
    assert abs(first - again).mean() < 8  # h264 is lossy
    with pytest.raises(ValueError, match='repeats=0'):
        loop_video(src, str(tmp_path / 'x0.mp4'), 0)


def test_tool_reports_each_length_against_1x(tiny_demo_root, tmp_path,
                                             tmp_path_factory):
    checkpoint = tiny_checkpoint_path(tmp_path_factory, tiny_demo_root)
    video = f'{tiny_demo_root}/test/videos/sports_test_0000.mp4'
    out = tmp_path / 'memory.json'
    proc = run_tool('analysis_tools/benchmark_inference_memory.py', video,
                    TINY, checkpoint, '--repeats', '3', '--threads', '1',
                    '--work-dir', tmp_path, '--out-json', out, '--',
                    '--task', 'action_detection', timeout=300)
    assert 'peak RSS MB' in proc.stdout
    result = json.loads(out.read_text())
    runs = result['runs']
    assert [r['repeats'] for r in runs] == [1, 3]  # 1x added, first
    assert runs[0]['ratio'] == 1.0
    assert runs[1]['ratio'] == pytest.approx(runs[1]['peak_rss_mb'] /
                                             runs[0]['peak_rss_mb'])
    assert runs[1]['num_frames'] == 3 * runs[0]['num_frames']
    assert runs[1]['num_clips'] > runs[0]['num_clips']
    # a real Python process with torch loaded, not a number from nowhere
    assert all(r['peak_rss_mb'] > 100 for r in runs)
    # the looped videos were removed
    assert not list(tmp_path.rglob('*.mp4'))

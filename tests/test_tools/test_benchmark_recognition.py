"""benchmark_recognition on a tiny CLIP: every method steps, the linear
probe is the baseline, and the text tower runs once per step for the class
set (0 times for cached fixed features, classes x clips for STT)."""
import importlib.util

from .conftest import REPO


def test_benchmark_all_methods_text_counts(tiny_clip_dir, capsys):
    spec = importlib.util.spec_from_file_location(
        'benchmark_recognition',
        REPO / 'tools' / 'analysis_tools' / 'benchmark_recognition.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from hvlm.analysis import benchmark_recognition
    res = benchmark_recognition(tiny_clip_dir, num_classes=5, batch_size=2,
                                views=2, frames=2, iters=1, warmup=1)
    assert res['ratio_to_linear_probe']['linear_probe'] == 1.0
    assert all(s > 0 for s in res['seconds'].values())
    texts = res['texts_per_step']
    assert texts['linear_probe'] == 0
    assert texts['zero_shot_templates'] == 0  # cached in the warm-up
    assert texts['vidop'] == 0
    for m in ('video_coop', 'dual_coop', 'vilt', 'vita'):
        assert texts[m] == 5, m  # the class set once: not per video/view
    assert texts['stt'] == 5 * 2 * 2  # classes x (videos x views)
    assert tool.main([tiny_clip_dir, '--methods', 'video_coop',
                      '--num-classes', '3', '--iters', '1', '--warmup',
                      '0', '--frames', '2']) == 0
    out = capsys.readouterr().out
    assert 'linear_probe' in out and 'video_coop' in out

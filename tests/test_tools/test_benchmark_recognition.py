"""benchmark_recognition on a tiny CLIP: every method steps, the linear
probe is the baseline, and the text tower runs once per step for the class
set (0 times for cached fixed features, classes x clips for STT)."""
import importlib.util

from .conftest import REPO


def test_benchmark_methods_and_text_counts(tiny_clip_dir):
    spec = importlib.util.spec_from_file_location(
        'benchmark_recognition',
        REPO / 'tools' / 'analysis_tools' / 'benchmark_recognition.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    from hvlm.analysis import (benchmark_recognition,
                               format_recognition_benchmark)
    methods = ('zero_shot_templates', 'video_coop', 'vidop', 'stt')
    res = benchmark_recognition(tiny_clip_dir, methods=methods,
                                num_classes=5, batch_size=2, views=2,
                                frames=2, iters=1, warmup=1)
    assert tuple(res['seconds']) == ('linear_probe', ) + methods
    assert res['ratio_to_linear_probe']['linear_probe'] == 1.0
    assert all(s > 0 for s in res['seconds'].values())
    texts = res['texts_per_step']
    assert texts['linear_probe'] == 0
    assert texts['zero_shot_templates'] == 0  # cached in the warm-up
    assert texts['vidop'] == 0
    assert texts['video_coop'] == 5  # the class set once: not per view
    assert texts['stt'] == 5 * 2 * 2  # classes x (videos x views)
    args = tool.parse_args([tiny_clip_dir, '--methods', 'vita', 'stt'])
    assert args.methods == ['vita', 'stt'] and args.num_classes == 101
    out = format_recognition_benchmark(res)
    assert 'x linear' in out and 'stt' in out

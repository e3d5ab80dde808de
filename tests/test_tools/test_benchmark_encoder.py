"""benchmark_encoder at a tiny size: both parts run on a saved tiny CLIP and
the demo videos, and every ratio comes from the run's own timings."""
import re
import statistics

import pytest
from mmengine.config import Config

from hvlm.analysis.encoder_benchmark import (benchmark_cache,
                                             benchmark_wrapper,
                                             format_encoder_benchmark,
                                             save_random_clip)
from tests.hf_checkpoints import save_tiny_model
from .conftest import REPO, data_options, run_tool

CONFIG = REPO / 'configs' / 'pretrained' / 'hier_sports_clip-vitb16.py'
CACHED = REPO / 'configs' / 'pretrained' / 'hier_sports_clip-vitb16_cached.py'


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp('bench') / 'tiny_clip'
    save_tiny_model(str(path), 'clip')
    return str(path)


def configs(root):
    cfgs = []
    for path in (CONFIG, CACHED):
        cfg = Config.fromfile(path)
        cfg.merge_from_dict(
            dict(o.split('=', 1) for o in data_options(root)))
        cfgs.append(cfg)
    return cfgs


def test_wrapper_against_transformers(tiny_clip):
    res = benchmark_wrapper(tiny_clip, batch_size=2, num_frames=3, rounds=2,
                            warmup=1)
    sec, fps = res['seconds'], res['frames_per_s']
    assert set(sec) == {'transformers', 'hvlm'} and res['frames'] == 6
    assert all(fps[k] == pytest.approx(6 / sec[k]) for k in sec)
    assert res['overhead'] == pytest.approx(
        sec['hvlm'] / sec['transformers'] - 1)
    # the same weights on the same frames: the same tokens
    assert res['max_abs_diff'] < 1e-5
    assert res['model_class'] == 'CLIPVisionModelWithProjection'


def test_cache_against_on_the_fly(tiny_clip, tiny_demo_root, tmp_path):
    video_cfg, cached_cfg = configs(tiny_demo_root)
    res = benchmark_cache(video_cfg, cached_cfg, tiny_clip,
                          str(tmp_path / 'cache'), batch_size=1, iters=2,
                          warmup=1)
    # batch x (warmup + iters) videos, all the tiny sports split has
    assert res['num_videos'] == 3 and res['extract_s'] > 0
    assert len(list((tmp_path / 'cache' / 'videos').iterdir())) == 3
    for k in ('on_the_fly', 'cached'):
        steps = res['step_seconds'][k]
        assert len(steps) == 2 and all(s > 0 for s in steps)
        assert res['seconds'][k] == statistics.median(steps)
        assert res['iters_per_s'][k] == pytest.approx(1 / res['seconds'][k])
    assert res['speedup'] == pytest.approx(
        res['seconds']['on_the_fly'] / res['seconds']['cached'])
    text = format_encoder_benchmark(None, res)
    assert f'cache speedup: {res["speedup"]:.2f}x' in text


@pytest.mark.slow
def test_cli_prints_ratios_of_its_own_numbers(tiny_clip, tiny_demo_root):
    proc = run_tool('analysis_tools/benchmark_encoder.py', '--pretrained',
                    tiny_clip, '--iters', '1', '--warmup', '1', '--rounds',
                    '2', '--batch-size', '1', '--cfg-options',
                    *data_options(tiny_demo_root), timeout=600)
    out = proc.stdout

    def row(name):
        m = re.search(re.escape(name) + r'\s+([\d.]+)\s+([\d.]+)', out)
        assert m, out
        return float(m.group(1))

    assert f'weights: {tiny_clip}' in out
    overhead = float(re.search(r'wrapper overhead: ([-+\d.]+)%', out)[1])
    # printed in ms to three decimals
    ratio = row('hvlm HFVisionEncoder') / row(
        'transformers CLIPVisionModelWithProjection')
    assert overhead == pytest.approx(100 * (ratio - 1), abs=1)
    speedup = float(re.search(r'cache speedup: ([\d.]+)x', out)[1])
    assert speedup == pytest.approx(
        row('decode + encode every step') / row('from the feature cache'),
        rel=0.05)


@pytest.mark.slow
def test_random_vit_b16_loads_as_a_checkpoint(tmp_path):
    from hvlm.registry import MODELS
    path = str(tmp_path / 'vitb16')
    save_random_clip(path, 'clip-vit-b16')
    enc = MODELS.build(dict(type='HFVisionEncoder', pretrained=path))
    assert tuple(enc.image_size) == (224, 224) and enc.patch_size == 16
    assert enc.model.config.hidden_size == 768
    assert enc.model.config.num_hidden_layers == 12
    with pytest.raises(ValueError, match='clip-vit-b16'):
        save_random_clip(str(tmp_path / 'x'), 'vit-huge')

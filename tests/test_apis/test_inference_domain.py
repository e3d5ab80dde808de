"""inference_video serves the domain adapter: a trained LoRA changes the
output, the default is the domain tools/test.py evaluates the config on,
and a merged adapter gives what the unmerged selection gives."""
import copy

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from hvlm.apis import init_model, inference_video, resolve_domain
from hvlm.datasets.demo_data import _write_mp4
from hvlm.engine.runner import HVLMRunner
from tests.test_tools.conftest import TINY

ADAPTER = dict(
    type='LoRAAdapter', domains=('general', 'sports', 'tutorials', 'news'),
    target_modules=('attn', 'mlp'), rank=4, alpha=8, dropout=0.,
    freeze_base=True, train_domains=['sports'])


@pytest.fixture(scope='module')
def lora_files(tiny_checkpoint, tmp_path_factory):
    """A LoRA fine-tune config of the tiny model (as
    configs/hier_sports_lora-ft.py is of hier_sports.py) and a checkpoint
    of it: the trained tiny weights, and sports factors set non-zero as
    if trained (the other domains keep B = 0)."""
    root = tmp_path_factory.mktemp('lora')
    config = root / 'tiny_sports_lora-ft.py'
    config.write_text(f'_base_ = [{TINY!r}]\nmodel = dict(adapter='
                      f'{ADAPTER!r})\n')
    model = init_model(str(config), None)
    base = torch.load(tiny_checkpoint, weights_only=False)
    model.load_state_dict(base['state_dict'], strict=False)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.adapter.layers.values():
            b = layer.lora_B['sports']
            b.copy_(torch.randn(b.shape, generator=g) * 0.5)
    checkpoint = root / 'lora.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=base['meta']),
               checkpoint)
    return str(config), str(checkpoint)


@pytest.fixture(scope='module')
def one_clip_split(tiny_demo_root, tmp_path_factory):
    """A split with one sports video of exactly one test clip, outside
    the demo layout's own annotations."""
    import decord
    reader = decord.VideoReader(
        f'{tiny_demo_root}/test/videos/sports_test_0000.mp4')
    model_cfg = Config.fromfile(TINY)
    step = next(t for t in model_cfg.test_dataloader.dataset.pipeline
                if t['type'] == 'SampleFrames')
    span = (step['clip_len'] - 1) * step['frame_interval'] + 1
    frames = reader.get_batch(list(range(span))).asnumpy()
    split = tmp_path_factory.mktemp('split')
    (split / 'videos').mkdir()
    _write_mp4(str(split / 'videos' / 'clip.mp4'), frames, 10)
    return split


def _actionness(result):
    return np.array(result['action_detection']['frames']['actionness'])


def test_lora_changes_the_output_and_is_the_default(lora_files,
                                                    one_clip_split,
                                                    tiny_checkpoint):
    config, checkpoint = lora_files
    model = init_model(config, checkpoint)
    video = str(one_clip_split / 'videos' / 'clip.mp4')
    default = inference_video(model, video, task='action_detection',
                              progress=False)
    # no metadata.json: the one domain the config tests on
    assert default['domain'] == dict(name='sports',
                                     source='test_dataloader domains')
    sports = inference_video(model, video, task='action_detection',
                             domain='sports', progress=False)
    base = inference_video(model, video, task='action_detection',
                           domain=None, progress=False)
    assert base['domain'] == dict(name=None, source='argument')
    np.testing.assert_array_equal(_actionness(default), _actionness(sports))
    assert np.abs(_actionness(sports) - _actionness(base)).max() > 1e-3
    # no domain is the general model without LoRA
    plain = inference_video(init_model(TINY, str(tiny_checkpoint)), video,
                            task='action_detection', progress=False)
    np.testing.assert_allclose(_actionness(base), _actionness(plain),
                               rtol=1e-6)


def test_default_is_what_the_test_loop_uses(lora_files, one_clip_split):
    """tools/test.py on this config tests sports videos, whose metadata
    domain selects the sports factors: the same numbers as inference's
    default on the same one-clip video."""
    config, checkpoint = lora_files
    model = init_model(config, checkpoint)
    video = str(one_clip_split / 'videos' / 'clip.mp4')
    result = inference_video(model, video, task='action_detection',
                             progress=False)

    cfg = copy.deepcopy(model.cfg)
    loader = cfg.test_dataloader
    loader.dataset.update(data_root=str(one_clip_split), domains=None)
    for step in loader.dataset.pipeline:
        if step['type'] == 'SampleFrames':
            step['num_clips'] = 1
    with DefaultScope.overwrite_default_scope('hvlm'):
        batch = next(iter(HVLMRunner.build_dataloader(loader.to_dict())))
    batch['data_samples'][0].set_metainfo(dict(domain='sports'))
    with torch.no_grad():
        ref = model.test_step(batch)[0]
    np.testing.assert_allclose(_actionness(result),
                               ref.pred_actionness.numpy(), rtol=1e-5)


def test_merged_adapter_serves_inference(lora_files, one_clip_split):
    config, checkpoint = lora_files
    model = init_model(config, checkpoint)
    video = str(one_clip_split / 'videos' / 'clip.mp4')
    unmerged = inference_video(model, video, task='action_detection',
                               domain='sports', progress=False)
    model.adapter.merge('sports')
    merged = inference_video(model, video, task='action_detection',
                             progress=False)
    assert merged['domain'] == dict(name='sports', source='merged adapter')
    np.testing.assert_allclose(_actionness(merged), _actionness(unmerged),
                               atol=1e-5)
    with pytest.raises(ValueError, match="'sports' is merged"):
        inference_video(model, video, domain='news', progress=False)
    with pytest.raises(ValueError, match="'sports' is merged"):
        inference_video(model, video, domain=None, progress=False)


def test_domain_choices_are_checked(tiny_checkpoint, lora_files):
    plain = init_model(TINY, str(tiny_checkpoint))
    assert resolve_domain(plain).source == 'none'
    with pytest.raises(ValueError, match='no domain modules'):
        resolve_domain(plain, 'sports')
    config, checkpoint = lora_files
    model = init_model(config, checkpoint)
    with pytest.raises(ValueError, match="domain='cooking' is not one of"):
        resolve_domain(model, 'cooking')
    # the video's own metadata comes before the config's test domains
    assert resolve_domain(model, video_domain='news') == ('news',
                                                          'video metadata')


def test_router_decides_by_default_and_is_restored(lora_files,
                                                   one_clip_split,
                                                   tmp_path):
    """With a router, 'auto' lets it route (soft blend of the domains);
    a named domain forces it for the call only, and merged inference
    forces the merged domain instead of the router's blend."""
    config, checkpoint = lora_files
    routed = tmp_path / 'routed.py'
    routed.write_text(f'_base_ = [{config!r}]\nmodel = dict(router=dict('
                      "type='DomainRouter', mode='soft'))\n")
    model = init_model(str(routed), None)
    state = torch.load(checkpoint, weights_only=False)['state_dict']
    model.load_state_dict(state, strict=False)  # the router stays random
    video = str(one_clip_split / 'videos' / 'clip.mp4')
    auto = inference_video(model, video, task='action_detection',
                           progress=False)
    assert auto['domain'] == dict(name=None, source='router')
    sports = inference_video(model, video, task='action_detection',
                             domain='sports', progress=False)
    assert model.router.force_domain is None
    assert np.abs(_actionness(auto) - _actionness(sports)).max() > 1e-4
    base = inference_video(model, video, task='action_detection',
                           domain=None, progress=False)
    assert model.router is not None
    assert np.abs(_actionness(base) - _actionness(sports)).max() > 1e-4
    model.adapter.merge('sports')
    merged = inference_video(model, video, task='action_detection',
                             progress=False)
    np.testing.assert_allclose(_actionness(merged), _actionness(sports),
                               atol=1e-5)
    assert model.router.force_domain is None

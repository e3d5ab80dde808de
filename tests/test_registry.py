"""Every registry imports its locations and builds under the Runner's scope."""
import importlib

import pytest
from mmengine.registry import DefaultScope

from hvlm.registry import ALL_REGISTRIES


@pytest.mark.parametrize('name', sorted(ALL_REGISTRIES))
def test_locations_import(name):
    registry = ALL_REGISTRIES[name]
    for location in registry._locations:
        importlib.import_module(location)


def test_component_registries_are_standalone_hvlm_scope():
    for name in ('ATTENTIONS', 'ADAPTERS', 'HEADS', 'MERGERS'):
        registry = ALL_REGISTRIES[name]
        assert registry.scope == 'hvlm'
        assert registry.parent is None


# one real type per registry that hvlm fills itself
HVLM_TYPES = {
    'RUNNERS': 'HVLMRunner',
    'HOOKS': 'RNGStateHook',
    'OPTIM_WRAPPERS': 'AmpOptimWrapper',
    'DATASETS': 'VideoDataset',
    'TRANSFORMS': 'SampleFrames',
    'FUNCTIONS': 'video_collate',
    'DATA_SAMPLERS': 'SeededSampler',
    'MODELS': 'HierarchicalVLM',
    'METRICS': 'FrameActionMetric',
    'ATTENTIONS': 'FullAttention',
    'MERGERS': 'SpatialPoolMerger',
    'HEADS': 'ActionDetectionHead',
}


@pytest.mark.parametrize('name', sorted(ALL_REGISTRIES))
def test_lookup_under_runner_default_scope(name):
    """With default_scope='hvlm' (what the Runner sets), each registry finds
    hvlm's types and still reaches mmengine's through its parent."""
    registry = ALL_REGISTRIES[name]
    with DefaultScope.overwrite_default_scope('hvlm'):
        if name in HVLM_TYPES:
            assert registry.get(HVLM_TYPES[name]) is not None, name
        if registry.parent is not None:
            inherited = next(iter(registry.parent.module_dict), None)
            if inherited is not None:
                assert registry.get(inherited) is not None


def test_build_component_under_runner_scope():
    from hvlm.registry import ATTENTIONS, MERGERS
    with DefaultScope.overwrite_default_scope('hvlm'):
        attn = ATTENTIONS.build(
            dict(type='FullAttention', embed_dims=8, num_heads=2))
        merger = MERGERS.build(dict(type='SpatialPoolMerger'))
    assert type(attn).__name__ == 'FullAttention'
    assert type(merger).__name__ == 'SpatialPoolMerger'

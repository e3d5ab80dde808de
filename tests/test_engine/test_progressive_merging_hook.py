"""ProgressiveMergingHook: the merger computes exactly the cues of the
epoch's stage (none, motion, motion and saliency)."""
import json
from collections import Counter
from pathlib import Path

import pytest
from mmengine.config import Config

from hvlm.registry import HOOKS, MODELS
from hvlm.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'tests' / 'data' / 'configs'
STRATEGIES = str(CONFIGS / 'tiny_sports_strategies.py')
TINY = str(CONFIGS / 'tiny_sports.py')

STAGES = [
    dict(epochs=1, motion=False, saliency=False),
    dict(epochs=1, motion=True, saliency=False),
    dict(epochs=1, motion=True, saliency=True),
]


def tiny_cfg(root, work_dir):
    """The tiny strategies config on the tiny demo set, with only the
    ProgressiveMergingHook and no validation."""
    cfg = Config.fromfile(STRATEGIES)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = f'{root}/{split}'
    cfg.custom_hooks = [
        h for h in cfg.custom_hooks if h.type == 'ProgressiveMergingHook'
    ]
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = 'progressive'  # its own logger and message hub
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.save_best = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def scalars(work_dir, key):
    """``(epoch, value)`` of the training scalar ``key`` in the JSON log."""
    return [(r['epoch'], r[key])
            for path in sorted(Path(work_dir).rglob('vis_data/scalars.json'))
            for r in map(json.loads, path.read_text().splitlines())
            if key in r]


@pytest.mark.parametrize('stages, message', [
    (None, 'non-empty list'),
    ([dict(epochs=1, motion=1, saliency=False)],
     r'stages\[0\]\.motion=1 must be True or False'),
    ([dict(epochs=-2, motion=True, saliency=False)],
     r'stages\[0\]\.epochs=-2 must be a positive integer'),
    ([dict(epochs=1, motion=True)], r"stages\[0\].*lacks \['saliency'\]"),
    ([dict(epochs=1, motion=True, saliency=True, edge=True)],
     r"has unknown keys \['edge'\]"),
])
def test_bad_stages_are_named(stages, message):
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='ProgressiveMergingHook', stages=stages))


def test_cue_that_was_not_built_fails_before_training():
    register_all_modules()
    cfg = Config.fromfile(STRATEGIES)
    cfg.model.backbone.merger.saliency = dict(enabled=False)
    model = MODELS.build(cfg.model)
    hook = HOOKS.build(dict(type='ProgressiveMergingHook', stages=STAGES))
    with pytest.raises(ValueError,
                       match=r'stages\[2\] \(motion=True, saliency=True\) is '
                       r'refused by AdaptiveTokenMerger at model\.backbone'
                       r'.*cannot switch saliency on'):
        hook.bind(model)


def test_model_without_a_supporting_merger_is_named():
    register_all_modules()
    model = MODELS.build(Config.fromfile(TINY).model)  # SpatialPoolMerger
    hook = HOOKS.build(dict(type='ProgressiveMergingHook', stages=STAGES))
    with pytest.raises(RuntimeError,
                       match=r'set_cues\(\).*SpatialPoolMerger'):
        hook.bind(model)


def test_cues_follow_the_stages_in_training(tiny_demo_root, tmp_path):
    """Over 4 epochs of a 3-stage schedule, optical flow (motion) and the
    saliency fusion run in exactly the epochs whose stage has them on."""
    from hvlm.engine.runner import HVLMRunner
    from hvlm.models.mergers import DenseOpticalFlow, MultiSaliencyFusion
    register_all_modules(init_default_scope=False)
    cfg = tiny_cfg(tiny_demo_root, tmp_path)
    cfg.train_cfg.max_epochs = 4
    runner = HVLMRunner.from_cfg(cfg)
    calls = Counter()

    def count(name):

        def hook(module, args, output):
            if runner.model.training:
                calls[name, runner.epoch] += 1

        return hook

    for m in runner.model.modules():
        if isinstance(m, DenseOpticalFlow):
            m.register_forward_hook(count('motion'))
        if isinstance(m, MultiSaliencyFusion):
            m.register_forward_hook(count('saliency'))
    runner.train()

    for epoch in range(4):
        stage = STAGES[min(epoch, 2)]
        for cue in ('motion', 'saliency'):
            assert (calls[cue, epoch] > 0) == stage[cue], (cue, epoch, calls)
    assert sorted(set(scalars(tmp_path, 'merging_motion'))) == [
        (1, 0.), (2, 1.), (3, 1.), (4, 1.)]
    assert sorted(set(scalars(tmp_path, 'merging_saliency'))) == [
        (1, 0.), (2, 0.), (3, 1.), (4, 1.)]
    log = '\n'.join(p.read_text() for p in sorted(Path(tmp_path).rglob(
        '*.log')))
    assert 'ProgressiveMergingHook: epoch 2 is in stage 2/3 (epoch 2): ' \
           'motion=True, saliency=False' in log

"""CurriculumHook: the merger keeps the stage's share of tokens, epoch by
epoch, across a resume and after the last stage."""
import json
import re
from pathlib import Path

import pytest
from mmengine.config import Config

from hvlm.registry import HOOKS, MODELS
from hvlm.utils import register_all_modules

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / 'tests' / 'data' / 'configs'
STRATEGIES = str(CONFIGS / 'tiny_sports_strategies.py')
TINY = str(CONFIGS / 'tiny_sports.py')


def tiny_cfg(path, root, work_dir, name, hook_type):
    """The tiny config on the tiny demo set, with only ``hook_type`` of its
    custom hooks and no validation."""
    cfg = Config.fromfile(path)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = f'{root}/{split}'
    cfg.custom_hooks = [h for h in cfg.custom_hooks if h.type == hook_type]
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name  # its own logger and message hub
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.save_best = None
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def record_tokens(runner, seen):
    """Append ``(epoch, tubelets, tokens out)`` of every training forward
    of the encoder to ``seen``: how many tokens the merging kept."""

    def hook(module, args, feats):
        if module.training:
            seen.append((runner.epoch, feats.index.shape[1],
                         feats.tokens.shape[1]))

    runner.model.backbone.register_forward_hook(hook)


def scalars(work_dir, key):
    """Values of the training scalar ``key`` in the run's JSON log."""
    values = []
    for path in sorted(Path(work_dir).rglob('vis_data/scalars.json')):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            if key in record:
                values.append((record['epoch'], record[key]))
    return values


def test_stage_at_runs_stages_consecutively():
    stages = [(2, 0.8), (3, 0.6), (1, 0.4)]
    hook = HOOKS.build(
        dict(type='CurriculumHook',
             stages=[dict(epochs=e, compression_ratio=r)
                     for e, r in stages]))
    expected = [i for i, (epochs, _) in enumerate(stages)
                for _ in range(epochs)]  # [0, 0, 1, 1, 1, 2]
    expected += [len(stages) - 1] * 4  # the last stage remains
    assert [hook.stage_at(e) for e in range(len(expected))] == expected


@pytest.mark.parametrize('stages, message', [
    ([], 'non-empty list'),
    ([dict(epochs=0, compression_ratio=0.5)], r'stages\[0\]\.epochs=0'),
    ([dict(epochs=2, compression_ratio=0.5),
      dict(epochs=1.5, compression_ratio=0.5)], r'stages\[1\]\.epochs=1\.5'),
    ([dict(epochs=2, compression_ratio=1.5)],
     r'stages\[0\]\.compression_ratio=1\.5 must be a number in \(0, 1\]'),
    ([dict(epochs=2, compression_ratio=0)], r'compression_ratio=0 must'),
    ([dict(epochs=2)], r"lacks \['compression_ratio'\]"),
    ([dict(epochs=2, ratio=0.5)],
     r"lacks \['compression_ratio'\] and has unknown keys \['ratio'\]"),
])
def test_bad_stages_are_named(stages, message):
    with pytest.raises(ValueError, match=message):
        HOOKS.build(dict(type='CurriculumHook', stages=stages))


def test_ratio_outside_the_merger_bounds_fails_before_training():
    register_all_modules()
    model = MODELS.build(Config.fromfile(STRATEGIES).model)
    hook = HOOKS.build(
        dict(type='CurriculumHook',
             stages=[dict(epochs=1, compression_ratio=0.5),
                     dict(epochs=1, compression_ratio=0.1)]))
    with pytest.raises(ValueError) as err:
        hook.bind(model)
    message = str(err.value)
    assert 'stages[1] (compression_ratio=0.1)' in message
    assert re.search(r'AdaptiveTokenMerger at model\.backbone\.merger', message)
    assert 'min_compression_ratio (0.25)' in message


def test_model_without_a_supporting_merger_is_named():
    register_all_modules()
    model = MODELS.build(Config.fromfile(TINY).model)  # SpatialPoolMerger
    hook = HOOKS.build(
        dict(type='CurriculumHook',
             stages=[dict(epochs=1, compression_ratio=0.5)]))
    with pytest.raises(RuntimeError,
                       match=r"set_compression_ratio\(\).*SpatialPoolMerger"
                       r".*AdaptiveTokenMerger"):
        hook.bind(model)


def test_curriculum_in_training_and_after_resume(tiny_demo_root, tmp_path):
    """Stages of one epoch at 0.8 / 0.6 / 0.4: 2 epochs, then a resume to
    4. Every training forward of the encoder keeps round(N * ratio) of its
    N tubelets, the ratio of its epoch's stage; the resumed run starts in stage 3 and epoch 4 stays there."""
    from hvlm.engine.runner import HVLMRunner
    register_all_modules(init_default_scope=False)
    ratios = {0: 0.8, 1: 0.6, 2: 0.4, 3: 0.4}
    work = tmp_path / 'work'

    cfg = tiny_cfg(STRATEGIES, tiny_demo_root, work, 'curriculum_a',
                   'CurriculumHook')
    cfg.train_cfg.max_epochs = 2
    runner = HVLMRunner.from_cfg(cfg)
    seen = []
    record_tokens(runner, seen)
    runner.train()

    cfg = tiny_cfg(STRATEGIES, tiny_demo_root, work, 'curriculum_b',
                   'CurriculumHook')
    cfg.train_cfg.max_epochs = 4
    cfg.resume = True
    runner = HVLMRunner.from_cfg(cfg)
    record_tokens(runner, seen)
    runner.train()

    assert sorted({epoch for epoch, _, _ in seen}) == [0, 1, 2, 3]
    for epoch, n_in, n_out in seen:
        assert n_out == round(n_in * ratios[epoch]), (epoch, n_in, n_out)
    # the log: the ratio in force at every iteration, by (1-based) epoch
    logged = scalars(work, 'compression_ratio')
    assert sorted(set(logged)) == [(e + 1, r) for e, r in ratios.items()]
    log = '\n'.join(p.read_text() for p in sorted(work.rglob('*.log')))
    assert 'CurriculumHook: epoch 2 is in stage 2/3 (epoch 2): ' \
           'compression_ratio=0.6' in log
    assert 'CurriculumHook: epoch 3 is in stage 3/3 (epoch 3 and after): ' \
           'compression_ratio=0.4' in log

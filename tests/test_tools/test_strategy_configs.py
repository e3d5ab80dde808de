"""The training-strategy configs (configs/strategies/) pass the config
check, fit their models, and each switch takes effect in a real run."""
import json
import math
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook

from hvlm.registry import HOOKS, MODELS
from hvlm.utils import register_all_modules
from hvlm.utils.config import check_config
from .conftest import REPO, TINY, data_options, find_one, run_tool

STRATEGIES = REPO / 'configs' / 'strategies'
TINY_STRATEGIES = str(REPO / 'tests' / 'data' / 'configs' /
                      'tiny_sports_strategies.py')
CHECKED = sorted(STRATEGIES.glob('*.py')) + sorted(
    (REPO / 'configs').glob('hier_*_lora-ft.py'))


def strategy(name):
    return Config.fromfile(str(STRATEGIES / name))


def tiny(root, work_dir, name):
    """tiny_sports on the tiny demo set, for an in-process run."""
    cfg = Config.fromfile(TINY)
    for key, split in (('train_dataloader', 'training'),
                       ('val_dataloader', 'validation'),
                       ('test_dataloader', 'test')):
        cfg[key].dataset.data_root = f'{root}/{split}'
    cfg.train_dataloader.sampler.seed = 0
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = name  # its own logger and message hub
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    return cfg


def first_batch(cfg, *models):
    """A batch of the config's training loader; the models get the
    tokenizer that a run's TokenizerHook would train on that split."""
    from hvlm.engine.runner import HVLMRunner
    loader = HVLMRunner.build_dataloader(cfg.train_dataloader)
    hook = HOOKS.build(dict(type='TokenizerHook'))
    for model in models:
        hook.before_train(
            SimpleNamespace(model=model, train_dataloader=loader))
    return next(iter(loader))


@pytest.mark.parametrize('path', CHECKED, ids=lambda p: p.name)
def test_config_passes_the_check_and_its_hooks_build(path):
    cfg = Config.fromfile(str(path))
    check_config(cfg)
    for hook in cfg.get('custom_hooks') or []:
        HOOKS.build(dict(hook))


@pytest.mark.parametrize('name', ['hier_sports_curriculum.py',
                                  'hier_sports_progressive_merging.py'])
def test_merging_strategy_fits_its_model_and_schedule(name):
    """Every stage is accepted by the configured merger, the stages span
    the schedule, and tools/test.py's merger is the last stage's."""
    register_all_modules()
    cfg = strategy(name)
    model = MODELS.build(cfg.model)
    (hook_cfg, ) = cfg.custom_hooks
    hook = HOOKS.build(dict(hook_cfg))
    assert sum(s['epochs'] for s in hook.stages) == cfg.train_cfg.max_epochs
    last = hook.stages[-1]
    merger = cfg.model.backbone.merger
    if 'compression_ratio' in last:
        assert merger.adaptive_merging.target_compression_ratio == \
            last['compression_ratio']
    else:
        assert (merger.motion.enabled, merger.saliency.enabled) == (
            last['motion'], last['saliency'])
    hook.bind(model)  # raises if the merger refuses a stage


def test_strategy_hooks_with_dist_train_amp(tiny_demo_root, tmp_path):
    """tools/dist_train.sh, 2 processes (gloo), ``--amp``, on
    tiny_sports_strategies.py: the adaptive merger trains under AMP in a
    2-process run, and both hooks change stage at epochs 2 and 3, in the
    log text and in the scalar log."""
    work = tmp_path / 'work'
    run_tool('dist_train.sh', TINY_STRATEGIES, 2, '--amp', '--work-dir',
             work, '--cfg-options', *data_options(tiny_demo_root),
             'train_cfg.val_interval=10',
             env=dict(PORT='29533', HVLM_CPU_AMP='1'),
             timeout=400)
    log = find_one(work, '*.log').read_text()
    assert 'world size 2' in log
    assert "type='AmpOptimWrapper'" in log
    assert (work / 'epoch_3.pth').is_file()
    for epoch, ratio, motion, saliency in ((1, 0.8, False, False),
                                           (2, 0.6, True, False),
                                           (3, 0.4, True, True)):
        span = f'epoch {epoch}' + (' and after' if epoch == 3 else '')
        assert (f'CurriculumHook: epoch {epoch} is in stage {epoch}/3 '
                f'({span}): compression_ratio={ratio}') in log
        assert (f'ProgressiveMergingHook: epoch {epoch} is in stage '
                f'{epoch}/3 ({span}): motion={motion}, saliency={saliency}'
                ) in log
    records = [
        json.loads(line)
        for line in find_one(work, 'scalars.json').read_text().splitlines()
    ]
    logged = sorted({(r['epoch'], r['compression_ratio'], r['merging_motion'],
                      r['merging_saliency'])
                     for r in records if 'compression_ratio' in r})
    assert logged == [(1, 0.8, 0., 0.), (2, 0.6, 1., 0.), (3, 0.4, 1., 1.)]


def test_multitask_loss_is_the_weighted_task_sum(tiny_demo_root):
    """hier_general_multitask's weights on the tiny model: every task loss
    is its weight times the loss the head computes unweighted, and the
    total is their sum."""
    register_all_modules()
    weights = strategy('hier_general_multitask.py').model.head.task_weights
    cfg = tiny(tiny_demo_root, '/unused', 'multitask')
    models = {}
    for name, task_weights in (('weighted', weights),
                               ('raw', dict.fromkeys(weights, 1.0))):
        cfg.model.head.task_weights = task_weights
        models[name] = MODELS.build(cfg.model).eval()
    assert models['weighted'].head.task_weights == dict(weights)
    models['raw'].load_state_dict(models['weighted'].state_dict())
    batch = first_batch(cfg, *models.values())
    losses = {}
    for name, model in models.items():
        data = model.data_preprocessor(batch, True)
        with torch.no_grad():
            losses[name] = model(**data, mode='loss')
    tasks = {key: task for key in losses['raw'] for task in weights
             if key.startswith(f'loss_{task}_')}
    assert set(tasks.values()) == set(weights)  # every head has a loss
    expected = 0.
    for key, task in tasks.items():
        torch.testing.assert_close(losses['weighted'][key],
                                   weights[task] * losses['raw'][key])
        expected += weights[task] * losses['raw'][key]
    total, _ = models['weighted'].parse_losses(losses['weighted'])
    torch.testing.assert_close(total, expected)
    raw_total, _ = models['raw'].parse_losses(losses['raw'])
    assert not torch.isclose(total, raw_total)  # the weights matter


def test_with_cp_same_loss_and_gradients(tiny_demo_root):
    """Checkpointed blocks (with dropout and drop path on) give the loss
    and every gradient of the plain model."""
    register_all_modules()
    cfg = tiny(tiny_demo_root, '/unused', 'with_cp')
    cfg.model.backbone.update(drop_rate=0.1, drop_path_rate=0.2)
    models = []
    for with_cp in (False, True):
        cfg.model.backbone.with_cp = with_cp
        torch.manual_seed(0)
        models.append(MODELS.build(cfg.model).train())
    batch = first_batch(cfg, *models)
    results = []
    for model in models:
        data = model.data_preprocessor(batch, True)
        torch.manual_seed(1)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters()
                 if p.grad is not None}
        results.append((loss.detach(), grads))
    (loss, grads), (loss_cp, grads_cp) = results
    torch.testing.assert_close(loss_cp, loss)
    assert grads_cp.keys() == grads.keys() and len(grads) > 10
    for name, grad in grads.items():
        torch.testing.assert_close(grads_cp[name], grad, msg=name)


class _Recorder(Hook):
    """What the efficient switches do at every training iteration."""

    priority = 'LOWEST'

    def __init__(self, probe: str):
        self.probe = probe
        self.lrs, self.steps, self.step_norms, self.raw = [], [], [], []
        self.dtypes = set()

    def before_train(self, runner):
        optimizer = runner.optim_wrapper.optimizer
        step = optimizer.step

        def recording_step(*args, **kwargs):
            grads = [p.grad for g in optimizer.param_groups
                     for p in g['params'] if p.grad is not None]
            self.step_norms.append(
                torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(g)
                                 for g in grads])).item())
            self.steps.append(runner.iter)
            return step(*args, **kwargs)

        optimizer.step = recording_step
        linear = next(m for m in runner.model.backbone.modules()
                      if isinstance(m, torch.nn.Linear))
        linear.register_forward_hook(
            lambda m, i, o: self.dtypes.add(o.dtype) if m.training else None)

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.lrs.append(runner.optim_wrapper.get_lr()['lr'][0])

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        param = runner.model.state_dict()[self.probe]
        self.raw.append(param.detach().clone())


def test_efficient_switches_take_effect(tiny_demo_root, tmp_path,
                                        monkeypatch):
    """hier_sports_efficient's switches on the tiny model, 6 iterations of
    one video: checkpointed blocks, bfloat16 autocast, a step every
    accumulative_counts iterations with the gradient clipped to max_norm,
    warm-up then cosine learning rates, and the EMA of the weights in the
    checkpoint."""
    import hvlm.models.backbones.hierarchical_video_encoder as encoder
    from hvlm.engine.runner import HVLMRunner
    register_all_modules(init_default_scope=False)
    eff = strategy('hier_sports_efficient.py')
    cfg = tiny(tiny_demo_root, tmp_path, 'efficient')
    cfg.model.backbone.with_cp = eff.model.backbone.with_cp
    for key in ('type', 'accumulative_counts', 'clip_grad'):
        cfg.optim_wrapper[key] = eff.optim_wrapper[key]
    cfg.param_scheduler = eff.param_scheduler
    (ema, ) = [h for h in eff.custom_hooks if h.type == 'EMAHook']
    cfg.custom_hooks = [ema]
    cfg.train_dataloader.batch_size = 1  # 3 sports videos: 3 iterations
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.save_best = None

    checkpointed = []
    checkpoint = encoder.checkpoint
    monkeypatch.setattr(
        encoder, 'checkpoint',
        lambda *a, **kw: checkpointed.append(kw) or checkpoint(*a, **kw))
    runner = HVLMRunner.from_cfg(cfg)
    probe = 'backbone.stages.1.0.mlp.fc1.weight'
    recorder = _Recorder(probe)
    runner.register_hook(recorder)
    runner.train()
    total = runner.iter
    assert total == 6

    # gradient checkpointing, non-reentrant
    assert checkpointed and all(kw['use_reentrant'] is False
                                for kw in checkpointed)
    # mixed precision: the encoder's linears ran in bfloat16 (CPU autocast)
    assert recorder.dtypes == {torch.bfloat16}
    # accumulation: steps after every k-th iteration and at the end
    k = eff.optim_wrapper.accumulative_counts
    assert recorder.steps == [i for i in range(total)
                              if (i + 1) % k == 0 or i + 1 == total]
    # clipping: every step's gradient norm is at most max_norm, and it
    # was cut (the tiny model's raw norm is above 1)
    max_norm = eff.optim_wrapper.clip_grad.max_norm
    assert all(n <= max_norm * (1 + 1e-4) for n in recorder.step_norms)
    assert max(recorder.step_norms) == pytest.approx(max_norm, rel=1e-3)
    # warm-up then cosine (mmengine's conventions: linear warm-up reaches
    # the base lr at its last iteration; cosine over T_max epochs of iters)
    warmup, cosine = eff.param_scheduler
    base_lr = cfg.optim_wrapper.optimizer.lr
    per_epoch = total // cfg.train_cfg.max_epochs
    n_warm = (warmup.end - warmup.begin) * per_epoch
    t_max = cosine.T_max * per_epoch
    expected = []
    for i in range(total):
        if i < n_warm:
            f = warmup.start_factor + (1 - warmup.start_factor) * i / (
                n_warm - 1)
            expected.append(base_lr * f)
        else:
            expected.append(cosine.eta_min + (base_lr - cosine.eta_min) *
                            (1 + math.cos(math.pi * (i - n_warm) / t_max)) /
                            2)
    assert recorder.lrs == pytest.approx(expected, rel=1e-6)
    # EMA: the checkpoint's state_dict is the average of the raw weights
    # after every iteration (the first copied), the raw ones kept aside
    ckpt = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu',
                      weights_only=False)
    average = recorder.raw[0].float()
    for raw in recorder.raw[1:]:
        average = (1 - ema.momentum) * average + ema.momentum * raw.float()
    torch.testing.assert_close(ckpt['state_dict'][probe], average)
    raw = ckpt['ema_state_dict']['module.' + probe]
    torch.testing.assert_close(raw, recorder.raw[-1])
    assert not torch.allclose(raw, ckpt['state_dict'][probe])
    # ... and the averaged model is complete: tools/test.py can load it
    model = MODELS.build(cfg.model)
    model.load_state_dict(ckpt['state_dict'])
    assert model.head.heads['video_qa'].tokenizer is not None


def test_early_stopping_stops_when_the_metric_stalls(tiny_demo_root,
                                                     tmp_path):
    """hier_sports_efficient's EarlyStoppingHook with patience 1 and a
    learning rate of 0 (so the metric cannot improve): training stops after
    epoch 2 of 5."""
    from hvlm.engine.runner import HVLMRunner
    register_all_modules(init_default_scope=False)
    (stop, ) = [h for h in strategy('hier_sports_efficient.py').custom_hooks
                if h.type == 'EarlyStoppingHook']
    cfg = tiny(tiny_demo_root, tmp_path, 'early_stopping')
    cfg.custom_hooks = [dict(stop, patience=1)]
    cfg.optim_wrapper.optimizer.lr = 0.
    cfg.train_cfg.max_epochs = 5
    runner = HVLMRunner.from_cfg(cfg)
    runner.train()
    assert runner.epoch == 2
    log = find_one(tmp_path, '*.log').read_text()
    assert 'the monitored metric did not improve in the last 1 records' in log


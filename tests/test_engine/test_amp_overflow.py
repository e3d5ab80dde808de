"""float16 on CPU with a GradScaler: an overflowing step is skipped and the
scale lowered, training goes on, and NonFiniteLossHook and the scaler each
handle their own fault."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel

from hvlm.registry import HOOKS, OPTIM_WRAPPERS

REPO = Path(__file__).resolve().parents[2]
INIT_SCALE = 2.**16


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.net(inputs)  # [B, 1], float16 under autocast
        return dict(loss=out.float().pow(2).mean())


def setup(clip_grad=None, **loss_scale):
    torch.manual_seed(0)
    model = Toy()
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='AmpOptimWrapper',
            dtype='float16',
            loss_scale=dict(dict(init_scale=INIT_SCALE), **loss_scale),
            clip_grad=clip_grad,
            optimizer=torch.optim.SGD(
                model.parameters(), lr=0.01, momentum=0.9)))
    hook = HOOKS.build(dict(type='NonFiniteLossHook'))
    runner = SimpleNamespace(
        model=model,
        optim_wrapper=wrapper,
        iter=0,
        message_hub=MessageHub.get_instance('amp-overflow'),
        logger=MMLogger.get_instance('amp-overflow'))
    hook.before_train(runner)
    return model, wrapper, hook


def batch(kind: str) -> torch.Tensor:
    """``'good'``: ordinary inputs. ``'big'``: inputs whose loss is finite
    (about 1e5) but whose gradient times a scale of 2**16 exceeds float16's
    65504: the overflow loss scaling exists for. ``'nan'``: a NaN loss."""
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    return dict(good=x, big=x * 300, nan=x * float('nan'))[kind]


def step(model, wrapper, kind):
    with wrapper.optim_context(model):
        losses = model(batch(kind))
    loss, _ = model.parse_losses(losses)
    wrapper.update_params(loss)
    return loss


def snapshot(model, wrapper):
    return ([p.detach().clone() for p in model.parameters()], {
        k: v['momentum_buffer'].clone()
        for k, v in wrapper.optimizer.state.items()
    })


def assert_same(a, b):
    for x, y in zip(a[0], b[0]):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert a[1].keys() == b[1].keys()
    for k in a[1]:
        torch.testing.assert_close(a[1][k], b[1][k], rtol=0, atol=0)


def assert_same_state(a: dict, b: dict):
    """Optimizer states ``{param id: {name: tensor or number}}`` equal."""
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].keys() == b[k].keys()
        for name, value in a[k].items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(b[k][name])), (k, name)


def test_fp16_on_cpu_autocasts_with_a_cpu_scaler():
    model, wrapper, _ = setup()
    with wrapper.optim_context(model):
        assert model.net(batch('good')).dtype == torch.float16
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    assert wrapper.loss_scaler.get_scale() == INIT_SCALE
    # --amp alone stays bfloat16 without a scaler on CPU
    plain = OPTIM_WRAPPERS.build(
        dict(
            type='AmpOptimWrapper',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert plain.cast_dtype == torch.bfloat16 and plain.loss_scaler is None


@pytest.mark.parametrize('clip_grad', [None, dict(max_norm=1.0)])
def test_overflow_is_skipped_halves_the_scale_and_training_goes_on(
        clip_grad):
    """good, big, good ends where good, good ends: the overflowing step
    changed neither weights nor momentum; only the scale went down."""
    model, wrapper, hook = setup(clip_grad)
    step(model, wrapper, 'good')
    before = snapshot(model, wrapper)
    loss = step(model, wrapper, 'big')
    assert torch.isfinite(loss)  # a finite loss: not the hook's business
    assert_same(snapshot(model, wrapper), before)
    scaler = wrapper.loss_scaler
    assert scaler.get_scale() == INIT_SCALE * scaler.get_backoff_factor()
    assert hook.skipped == 0
    step(model, wrapper, 'good')
    after = snapshot(model, wrapper)
    assert any(not torch.equal(x, y) for x, y in zip(after[0], before[0]))

    reference, ref_wrapper, _ = setup(clip_grad)
    step(reference, ref_wrapper, 'good')
    step(reference, ref_wrapper, 'good')
    # the scales differ by a power of two, which float arithmetic undoes
    # exactly unless values underflow; allow float32 rounding
    for x, y in zip(after[0], reference.parameters()):
        torch.testing.assert_close(x, y)
    assert ref_wrapper.loss_scaler.get_scale() == INIT_SCALE


def test_nonfinite_loss_is_the_hooks_and_leaves_the_scale():
    model, wrapper, hook = setup()
    step(model, wrapper, 'big')  # the scaler skips and halves
    halved = wrapper.loss_scaler.get_scale()
    before = snapshot(model, wrapper)
    step(model, wrapper, 'nan')  # the hook skips before backward
    assert hook.skipped == 1
    assert wrapper.loss_scaler.get_scale() == halved
    assert_same(snapshot(model, wrapper), before)
    assert all(p.grad is None or not p.grad.any()
               for p in model.parameters())
    step(model, wrapper, 'good')  # and the scaler still steps cleanly
    assert hook.consecutive == 0
    assert any(not torch.equal(p, b)
               for p, b in zip(model.parameters(), before[0]))


def test_scale_grows_back_and_round_trips():
    model, wrapper, _ = setup(growth_interval=2)
    step(model, wrapper, 'big')
    low = wrapper.loss_scaler.get_scale()
    step(model, wrapper, 'good')
    step(model, wrapper, 'good')
    grown = wrapper.loss_scaler.get_scale()
    assert grown == low * wrapper.loss_scaler.get_growth_factor()
    state = wrapper.state_dict()
    assert state['loss_scaler']['scale'] == grown
    _, fresh, _ = setup()
    fresh.load_state_dict(state)
    assert fresh.loss_scaler.get_scale() == grown


@pytest.mark.slow
def test_fp16_training_run_skips_exactly_the_overflowing_steps(
        tiny_demo_root, tmp_path):
    """tools/train.py --amp with float16 and a loss scale too high for the
    tiny model's gradients: the first steps overflow. A checkpoint after
    every iteration shows, step by step, that a step whose scale was cut
    left weights and optimizer state alone and that the others trained."""
    work = tmp_path / 'fp16'
    root = tiny_demo_root
    subprocess.run(
        [
            sys.executable,
            str(REPO / 'tools/train.py'),
            str(REPO / 'tests/data/configs/tiny_sports.py'), '--amp',
            '--deterministic', '--work-dir',
            str(work), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}/training',
            'optim_wrapper.dtype=float16',
            'optim_wrapper.loss_scale.init_scale=262144.0',
            'train_cfg.max_epochs=2', 'val_cfg=None', 'val_dataloader=None',
            'val_evaluator=None', 'default_hooks.checkpoint.save_best=None',
            'default_hooks.checkpoint.by_epoch=False',
            'default_hooks.checkpoint.interval=1',
            'default_hooks.checkpoint.max_keep_ckpts=-1'
        ],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        check=True,
        capture_output=True,
        timeout=300)
    ckpts = [
        torch.load(work / f'iter_{i}.pth', weights_only=False)
        for i in range(1, 5)
    ]
    skipped = trained = 0
    for prev, cur in zip(ckpts, ckpts[1:]):
        scale = cur['optimizer']['loss_scaler']['scale']
        prev_scale = prev['optimizer']['loss_scaler']['scale']
        same = all(
            torch.equal(v, prev['state_dict'][k])
            for k, v in cur['state_dict'].items())
        if scale < prev_scale:
            assert scale == prev_scale / 2 and same
            assert_same_state(cur['optimizer']['state'],
                              prev['optimizer']['state'])
            skipped += 1
        else:
            assert scale == prev_scale and not same
            trained += 1
    assert skipped and trained, (skipped, trained)
    for ckpt in ckpts:
        assert all(v.isfinite().all() for v in ckpt['state_dict'].values()
                   if v.is_floating_point())

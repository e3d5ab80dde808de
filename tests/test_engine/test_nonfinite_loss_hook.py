"""A NaN/Inf loss is caught in its own step: skipped or stopped, named."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from mmengine.logging import MessageHub, MMLogger
from mmengine.model import BaseModel

from hvlm.registry import HOOKS, OPTIM_WRAPPERS


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='loss'):
        out = self.fc(inputs).mean()
        return dict(loss_main=out * inputs.sum(), loss_aux=out.abs())


def setup(policy, wrapper_type='OptimWrapper', **kwargs):
    torch.manual_seed(0)
    model = Toy()
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type=wrapper_type,
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    hook = HOOKS.build(dict(type='NonFiniteLossHook', policy=policy,
                            **kwargs))
    runner = SimpleNamespace(
        model=model,
        optim_wrapper=wrapper,
        iter=6,
        message_hub=MessageHub.get_instance(f'nonfinite-{policy}'),
        logger=MMLogger.get_instance('nonfinite'))
    hook.before_train(runner)
    return model, wrapper, hook, runner


def step(model, wrapper, value):
    inputs = torch.full((2, 4), value)
    with wrapper.optim_context(model):
        losses = model(inputs)
    loss, _ = model.parse_losses(losses)
    wrapper.update_params(loss)


@pytest.mark.parametrize('wrapper_type', ['OptimWrapper', 'AmpOptimWrapper'])
def test_skip_leaves_weights_untouched_and_counts(wrapper_type):
    model, wrapper, hook, runner = setup('skip', wrapper_type)
    before = [p.detach().clone() for p in model.parameters()]
    step(model, wrapper, float('nan'))
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)
        assert p.grad is None or not p.grad.abs().sum()
    assert hook.skipped == 1
    assert runner.message_hub.get_scalar(
        'train/nonfinite_skipped').current() == 1
    step(model, wrapper, 1.0)  # a good batch trains again
    assert any(not torch.equal(p, b)
               for p, b in zip(model.parameters(), before))
    assert hook.consecutive == 0


def test_stop_names_iteration_and_terms():
    model, wrapper, hook, runner = setup('stop')
    with pytest.raises(FloatingPointError) as err:
        step(model, wrapper, float('inf'))
    message = str(err.value)
    assert 'iteration 7' in message
    assert 'loss_main=' in message and 'loss_aux=' in message


def test_skip_stops_once_diverged():
    model, wrapper, hook, runner = setup('skip', max_consecutive=2)
    step(model, wrapper, float('nan'))
    step(model, wrapper, float('nan'))
    with pytest.raises(FloatingPointError, match='3 consecutive'):
        step(model, wrapper, float('nan'))


def test_bad_policy_named():
    with pytest.raises(ValueError, match="policy='ignore'"):
        HOOKS.build(dict(type='NonFiniteLossHook', policy='ignore'))

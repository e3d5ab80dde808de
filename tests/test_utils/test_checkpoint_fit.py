"""Weights load only when they fit; allowed keys are let through by name."""
import pytest
import torch
import torch.nn as nn

from hvlm.utils import CheckpointLoadError
from hvlm.utils.checkpoint_fit import find_mismatch, load_fitting_weights


def net(width=4, depth=8):
    return nn.Sequential(*[nn.Linear(width, width) for _ in range(depth)])


def test_a_wider_checkpoint_is_refused_and_nothing_is_loaded():
    model = net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoint = dict(state_dict=net(width=6).state_dict())
    with pytest.raises(CheckpointLoadError) as info:
        load_fitting_weights(model, checkpoint, 'wide.pth')
    message = str(info.value)
    assert message.startswith('checkpoint wide.pth does not fit the model '
                              '(16 of another shape; the model has 16 keys)')
    assert '  0.weight: checkpoint [6, 6], model [4, 4]' in message
    assert '... and 11 more' in message
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_missing_and_unexpected_keys_are_named():
    source = net(depth=2).state_dict()
    del source['1.bias']
    source['2.weight'] = torch.zeros(4, 4)
    with pytest.raises(CheckpointLoadError) as info:
        load_fitting_weights(net(depth=2), source, 'x.pth')
    message = str(info.value)
    assert '(1 missing, 1 unexpected;' in message
    assert '1.bias: in the model, not in the checkpoint' in message
    assert '2.weight: in the checkpoint, not in the model' in message


def test_allowed_missing_keys_keep_their_values():
    model = net(depth=2)
    model.register_parameter('new_head', nn.Parameter(torch.ones(3)))
    source = {f'module.{k}': torch.full_like(v, 7.)
              for k, v in net(depth=2).state_dict().items()}
    mismatch = load_fitting_weights(
        model, dict(state_dict=source), 'g.pth', allow_missing=[r'^new_'])
    assert mismatch.allowed_missing == ['new_head']
    assert torch.equal(model.new_head, torch.ones(3))
    assert (model[0].weight == 7.).all()


def test_allowed_unexpected_keys_are_ignored():
    model = net(depth=1)
    source = dict(net(depth=1).state_dict(), extra_head=torch.ones(2))
    mismatch = load_fitting_weights(model, source, 'g.pth',
                                    allow_unexpected=['extra'])
    assert mismatch.allowed_unexpected == ['extra_head']


def test_extra_state_is_not_shape_checked():
    a, b = dict(x=torch.zeros(2), tok_extra_state=torch.zeros(5)), dict(
        x=torch.zeros(2), tok_extra_state=torch.zeros(9))
    assert not find_mismatch(a, b).refused
    assert find_mismatch(a, dict(b, x=torch.zeros(3))).refused


def test_a_bad_pattern_names_its_option():
    with pytest.raises(ValueError, match='load_from_allow_missing'):
        find_mismatch({}, {}, allow_missing=['(unclosed'])


def test_allowed_shape_mismatch_keeps_the_initial_value():
    """Fine-tuning on a data set with other classes: only the listed heads
    may differ in shape; they keep their initial values, the rest loads."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 3))
    init = model[1].weight.clone()
    source = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 5)).state_dict()
    with pytest.raises(CheckpointLoadError, match='2 of another shape'):
        load_fitting_weights(model, source, 'ag.pth', allow_shape=[r'^0\.'])
    mismatch = load_fitting_weights(model, source, 'ag.pth',
                                    allow_shape=[r'^1\.'])
    assert mismatch.allowed_shapes == [('1.weight', (5, 4), (3, 4)),
                                       ('1.bias', (5, ), (3, ))]
    assert torch.equal(model[1].weight, init)
    assert torch.equal(model[0].weight, source['0.weight'])

"""--amp on CPU: bf16 autocast without loss scaling by default, fp16 with a
CPU GradScaler on request; state round-trips."""
import warnings

import pytest
import torch
import torch.nn as nn

from hvlm.registry import OPTIM_WRAPPERS


def build(**kwargs):
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1))
    wrapper = OPTIM_WRAPPERS.build(
        dict(
            type='AmpOptimWrapper',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
            **kwargs))
    return model, wrapper


def test_cpu_step_runs_in_bf16_and_learns():
    torch.manual_seed(0)
    model, wrapper = build()
    x = torch.randn(64, 8)
    y = x.sum(1, keepdim=True)
    losses = []
    for _ in range(30):
        with wrapper.optim_context(model):
            out = model(x)
            assert out.dtype == torch.bfloat16  # autocast is really on
            loss = (out.float() - y).pow(2).mean()
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert wrapper.loss_scaler is None
    assert losses[-1] < 0.5 * losses[0]
    # parameters stay fp32 masters
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_state_dict_roundtrip_and_gpu_state_accepted():
    model, wrapper = build()
    state = wrapper.state_dict()
    assert 'loss_scaler' not in state
    state['loss_scaler'] = {'scale': 65536.0}  # as written on a GPU
    wrapper.load_state_dict(state)


def test_fp16_on_cpu_gets_a_loss_scaler():
    # overflow handling itself: tests/test_engine/test_amp_overflow.py
    model, wrapper = build(dtype='float16')
    assert wrapper.cast_dtype == torch.float16
    assert isinstance(wrapper.loss_scaler, torch.amp.GradScaler)
    assert 'loss_scaler' in wrapper.state_dict()


def test_other_dtypes_on_cpu_are_a_clear_error():
    with pytest.raises(ValueError, match='float64.*bfloat16'):
        build(dtype='float64')


def test_bf16_named_by_the_config_warns_on_a_slow_cpu(monkeypatch):
    from hvlm.utils import cpu_amp
    slow = cpu_amp.CPUBF16Probe('AVX2', (), 82.0, 0.9)
    monkeypatch.setattr(
        'hvlm.engine.optim.amp_optim_wrapper.probe_cpu_bf16', lambda: slow)
    with pytest.warns(UserWarning, match=r'AVX2.*0\.9 GFLOP/s'):
        _, wrapper = build()
    assert wrapper.cast_dtype == torch.bfloat16  # what the config asked for
    fast = cpu_amp.CPUBF16Probe('AVX512', ('amx_bf16', ), 80.0, 190.0)
    monkeypatch.setattr(
        'hvlm.engine.optim.amp_optim_wrapper.probe_cpu_bf16', lambda: fast)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        build()

"""count_params: exact counts on the meta device, and the CLI."""
import json
import os.path as osp

import pytest
from mmengine.config import Config

from hvlm.analysis import build_model_on_meta, count_parameters
from .conftest import REPO, run_tool

BASE = str(REPO / 'configs' / '_base_' / 'models' / 'hvlm_base.py')


def lora_per_block(C, r, mlp_ratio=4):
    """r * (in + out) for qkv, proj, fc1, fc2 of one block of width C."""
    H = C * mlp_ratio
    return r * ((C + 3 * C) + (C + C) + (C + H) + (H + C))


def base_model(**adapter):
    cfg = Config.fromfile(BASE).model.to_dict()
    if adapter:
        cfg['adapter'] = dict(type='LoRAAdapter', **adapter)
    return build_model_on_meta(cfg)


def test_base_size_lora_counts_match_the_formula():
    plain = count_parameters(base_model())
    assert plain['trainable'] == plain['total'] > 85_000_000
    lora = count_parameters(base_model(freeze_base=True,
                                       train_domains=['sports']))
    per_domain = 12 * lora_per_block(768, 8)
    assert per_domain == 1_179_648
    assert lora['trainable'] == per_domain
    assert lora['lora_per_domain'] == dict(
        general=per_domain, sports=per_domain, tutorials=per_domain,
        news=per_domain)
    assert lora['total'] == plain['total'] + 4 * per_domain
    # rank 8 on attention + MLP adds 16 r C weights to every 12 C^2 block,
    # 1.39 % of the encoder blocks at C=768, so the original's "< 1 %" does
    # not hold for these targets (it does for attention only, below)
    assert per_domain / plain['total'] > 0.01
    attn = count_parameters(base_model(freeze_base=True,
                                       train_domains=['sports'],
                                       target_modules=['attn']))
    assert attn['trainable'] == 12 * 8 * (4 * 768 + 2 * 768)
    assert attn['trainable'] / plain['total'] < 0.01
    # meta device: no storage
    assert all(p.is_meta for p in base_model().parameters())


def test_meta_count_equals_a_real_build():
    cfg = Config.fromfile(str(REPO / 'tests' / 'data' / 'configs' /
                              'tiny_sports.py')).model.to_dict()
    cfg['adapter'] = dict(type='LoRAAdapter', rank=2, freeze_base=True)
    from hvlm.registry import MODELS
    real = MODELS.build(cfg)
    meta = build_model_on_meta(cfg)
    assert count_parameters(real) == count_parameters(meta)
    assert count_parameters(real)['trainable'] == sum(
        p.numel() for p in real.adapter.lora_parameters())


def test_cli_reports_a_fine_tune_config(tmp_path):
    out = str(tmp_path / 'counts.json')
    proc = run_tool('analysis_tools/count_params.py',
                    'configs/hier_sports_lora-ft.py', '--json', out)
    assert 'trainable share' in proc.stdout
    counts = json.load(open(out))
    assert counts['trainable'] == counts['lora_per_domain']['sports'] > 0
    assert counts['trainable_ratio'] == pytest.approx(
        counts['trainable'] / counts['total'])
    assert osp.exists(out)

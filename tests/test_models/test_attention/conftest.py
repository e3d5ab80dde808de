"""Shared check: an attention trains inside the main job's model."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope

from hvlm.registry import MODELS
from hvlm.structures import VideoDataSample

from attention_reference import heads_of

CONFIGS = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs')


def _check_train_step(expected: str, config: str = None,
                      attention: dict = None):
    """Build HierarchicalVLM from ``configs/attention/hier_sports_<config>.py``
    (or ``hier_sports.py`` with ``attention`` swapped in), check that every
    block uses ``expected``, and that one AdamW step gives a finite loss and
    moves the attention's weights."""
    path = (osp.join(CONFIGS, 'attention', f'hier_sports_{config}.py')
            if config else osp.join(CONFIGS, 'hier_sports.py'))
    cfg = Config.fromfile(path)
    if attention is not None:
        cfg.model.backbone.attention = attention
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('hvlm'):
        model = MODELS.build(cfg.model)
    mixers = [block.attn for stage in model.backbone.stages for block in stage]
    assert mixers and all(type(m).__name__ == expected for m in mixers)

    g = torch.Generator().manual_seed(0)
    inputs, samples = [], []
    for i in range(2):
        inputs.append(
            torch.randint(0, 256, (1, 3, 8, 64, 64), generator=g,
                          dtype=torch.uint8))  # [clips, C, T, H, W]
        sample = VideoDataSample(metainfo=dict(video_id=f'v{i}'))
        sample.gt_frame_labels = torch.randint(0, 8, (8, ), generator=g)
        samples.append(sample)
    mixer = mixers[0]
    before = {k: v.detach().clone() for k, v in mixer.named_parameters()}
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model.train()
    log_vars = model.train_step(
        dict(inputs=inputs, data_samples=samples, skipped=[]), optim)
    assert torch.isfinite(log_vars['loss']), log_vars
    moved = [k for k, v in mixer.named_parameters()
             if not torch.equal(v, before[k])]
    assert moved, 'no parameter of the attention was updated'


def _masked_softmax_reference(attn, x, allowed, size=None, memory=None):
    """Dense masked softmax: ``allowed [N, M + N]`` over [memory; x], with
    the log-size key bias: the exact result a sparse pattern must match."""
    B, N, C = x.shape
    d = attn.head_dims
    q, k, v = heads_of(attn, x, memory)  # [B, h, N | M + N, d]
    L = k.shape[2]
    logits = q @ k.transpose(-1, -2) / math.sqrt(d)  # [B, h, N, L]
    if size is not None:
        full = torch.cat([torch.ones(B, L - N), size], 1)
        logits = logits + full.log()[:, None, None, :]
    logits = logits.masked_fill(~allowed, float('-inf'))
    out = (logits.softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
    return attn.proj(out)


@pytest.fixture
def masked_reference():
    return _masked_softmax_reference


@pytest.fixture
def check_train_step():
    return _check_train_step

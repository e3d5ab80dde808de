import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import ATTENTIONS, HEADS, MODELS

ENCODER = dict(
    type='HierarchicalVideoEncoder',
    patch_size=(2, 8, 8),
    embed_dims=(16, 32),
    depths=(1, 1),
    num_heads=(2, 2),
    drop_path_rate=0.,
    merger=dict(type='AdaptiveTokenMerger'))


@pytest.mark.parametrize('amp', [False, True])
def test_merges_between_stages_and_trains(amp):
    torch.manual_seed(0)
    encoder = MODELS.build(ENCODER)
    clips = torch.randn(2, 3, 8, 32, 32)  # grid (4, 4, 4): 64 tokens
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=amp):
        feats = encoder(clips)
    assert feats.tokens.shape == (2, 32, 32)
    assert feats.size.sum(1).tolist() == [64., 64.]
    counts = torch.stack([torch.bincount(i, minlength=32)
                          for i in feats.index])
    assert counts.float().tolist() == feats.size.tolist()
    assert encoder.stages[0][-1].attn.last_keys is None  # not kept around
    (feats.tokens.float().square().mean()
     + feats.frame_features().float().mean()).backward()
    missing = [n for n, p in encoder.named_parameters()
               if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_action_head_gets_one_output_per_frame():
    encoder = MODELS.build(ENCODER)
    action = HEADS.build(dict(type='ActionDetectionHead', in_channels=32,
                              num_classes=5))
    feats = encoder(torch.randn(2, 3, 8, 32, 32))
    # one output per input frame, read through the merge index
    assert action.frame_logits(feats).shape[:2] == (2, feats.num_frames)


@pytest.mark.parametrize('attention', sorted(ATTENTIONS.module_dict))
def test_every_attention_runs_after_the_merge(attention):
    """After the merge the tokens have sizes and no grid (shape=None):
    every registered attention must take that, forward and backward."""
    torch.manual_seed(0)
    encoder = MODELS.build(dict(ENCODER, attention=dict(type=attention)))
    feats = encoder(torch.randn(2, 3, 8, 32, 32))
    assert feats.tokens.shape == (2, 32, 32)
    assert torch.isfinite(feats.tokens).all()
    feats.tokens.square().mean().backward()
    grads = [p.grad for p in encoder.stages[1].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_a_second_merger_works_without_the_grid():
    """The second merge sees shape=None (no frame cues): it must still
    halve the tokens and keep index and size consistent."""
    encoder = MODELS.build(dict(
        ENCODER, embed_dims=(16, 16, 32), depths=(1, 1, 1),
        num_heads=(2, 2, 2)))
    feats = encoder(torch.randn(2, 3, 8, 32, 32))  # 64 -> 32 -> 16 tokens
    assert feats.tokens.shape == (2, 16, 32)
    counts = torch.stack([torch.bincount(i, minlength=16)
                          for i in feats.index])
    assert counts.float().tolist() == feats.size.tolist()
    assert feats.size.sum(1).tolist() == [64., 64.]

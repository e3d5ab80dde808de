import math

import pytest
import torch

from hvlm.models.mergers import AdaptiveTokenMerger
from hvlm.registry import ATTENTIONS, HEADS, MERGERS, MODELS

# every registered attention that can be a block's self-attention (DFCA
# fuses a second stream and is tested on its own)
SELF_ATTENTIONS = sorted(
    name for name, cls in ATTENTIONS.module_dict.items()
    if not getattr(cls, 'cross_stream', False))

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


@pytest.mark.parametrize('attention', SELF_ATTENTIONS)
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


def test_a_second_merge_works_without_the_grid():
    """The second merge point sees shape=None (no frame cues, only the
    cues carried from the first): with mode 'uniform' both points merge,
    and index and size stay consistent."""
    encoder = MODELS.build(dict(
        ENCODER, embed_dims=(16, 16, 32), depths=(1, 1, 1),
        num_heads=(2, 2, 2),
        merger=dict(type='AdaptiveTokenMerger',
                    adaptive_merging=dict(target_compression_ratio=0.25,
                                          mode='uniform'))))
    feats = encoder(torch.randn(2, 3, 8, 32, 32))  # 64 -> 32 -> 16 tokens
    assert feats.tokens.shape == (2, 16, 32)
    counts = torch.stack([torch.bincount(i, minlength=16)
                          for i in feats.index])
    assert counts.float().tolist() == feats.size.tolist()
    assert feats.size.sum(1).tolist() == [64., 64.]


def test_temporal_window_holds_at_every_merge_point():
    """Three merge points (mode 'uniform'): the later ones see no grid,
    but the tokens' time spans travel with the cues, so no final token
    stands for frames further apart than the window."""
    torch.manual_seed(0)
    encoder = MODELS.build(dict(
        ENCODER, embed_dims=(16, 16, 32), depths=(1, 1, 1),
        num_heads=(2, 2, 2),
        merger=dict(type='AdaptiveTokenMerger',
                    adaptive_merging=dict(target_compression_ratio=0.25,
                                          mode='uniform',
                                          temporal_window=1))))
    clip = torch.randn(2, 3, 1, 32, 32).expand(2, 3, 8, 32, 32)  # static
    feats = encoder(clip.contiguous())  # grid (4, 4, 4): 64 -> 16 tokens
    assert feats.tokens.shape[1] == 16
    frame = torch.arange(4).repeat_interleave(16)
    for row in feats.index:
        for k in range(16):
            steps = frame[row == k]
            assert steps.max() - steps.min() <= 1


class SpyMerger(AdaptiveTokenMerger):
    """Records what the encoder hands to every merge point."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls, self.frame_cue_calls = [], 0

    def frame_cues(self, frames, shape):
        self.frame_cue_calls += 1
        return super().frame_cues(frames, shape)

    def forward(self, x, **kwargs):
        info = super().forward(x, **kwargs)
        self.calls.append(dict(kwargs, n=x.shape[1], out=info))
        return info


MERGERS.register_module(name='_TestSpyMerger', module=SpyMerger, force=True)


def build_inside(mode='uniform', ratio=0.25, merge_after=(0, 1, 2),
                 attention='FullAttention', **merger):
    """Three stages of 2, 2, 1 blocks, merges after the given blocks."""
    return MODELS.build(dict(
        ENCODER, embed_dims=(16, 24, 32), depths=(2, 2, 1),
        num_heads=(2, 2, 2), merge_after=merge_after,
        attention=dict(type=attention),
        merger=dict(type='_TestSpyMerger',
                    adaptive_merging=dict(target_compression_ratio=ratio,
                                          min_compression_ratio=0.25,
                                          mode=mode), **merger)))


@pytest.mark.parametrize('mode', ['first', 'uniform', 'front'])
def test_merges_inside_stages_follow_the_plan(mode):
    torch.manual_seed(0)
    encoder = build_inside(mode)
    scheduler = encoder.merger.scheduler
    clips = torch.randn(2, 3, 8, 32, 32)  # grid (4, 4, 4): 64 tokens
    feats = encoder(clips)
    plan = scheduler.keep_counts(64, 3)
    assert plan[-1] == 16 and math.prod(
        scheduler.stage_ratios(3)) == pytest.approx(0.25)
    calls = encoder.merger.calls
    # a point whose plan keeps every token is skipped
    merged = [k for k, before in zip(plan, [64] + plan[:-1]) if k < before]
    assert [c['out'].x.shape[1] for c in calls] == merged
    assert feats.tokens.shape == (2, 16, 32)
    for call in calls:
        # frames and the keys of the block just run, at every point
        assert call['frames'] is clips
        assert call['attn'].shape[:2] == (2, call['n'])
    assert encoder.merger.frame_cue_calls == 1  # once per clip batch
    # every tubelet reaches a final token, sizes count them
    counts = torch.stack([torch.bincount(i, minlength=16)
                          for i in feats.index])
    assert counts.float().tolist() == feats.size.tolist()
    assert all(b.attn.last_keys is None and not b.attn.keep_keys
               for stage in encoder.stages for b in stage)


def test_cues_travel_with_the_tokens():
    """The second point gets the first point's cue maps, merged with the
    sizes: each slot holds the size-weighted mean of its tubelets' cues."""
    torch.manual_seed(0)
    encoder = build_inside('uniform', merge_after=(0, 2))
    encoder(torch.randn(2, 3, 8, 32, 32))
    first, second = encoder.merger.calls
    assert first.get('cues') is None and first['shape'] == (4, 4, 4)
    assert second['shape'] is None
    cues = first['out'].cues
    assert sorted(cues) == ['color', 'edge', 'motion']
    assert second['cues'] is cues
    raw = encoder.merger.frame_cues(first['frames'], (4, 4, 4))
    info = first['out']
    for name, cue in raw.items():
        summed = torch.zeros(2, info.x.shape[1]).scatter_add(
            1, info.index, cue)
        torch.testing.assert_close(cues[name], summed / info.size)


def test_ratio_hooks_steer_the_whole_plan():
    """set_compression_ratio, as a curriculum hook calls it on every module
    that has it, sets what the encoder keeps in all; at 1.0 nothing merges
    and the encoder computes exactly what it computes without a merger."""
    torch.manual_seed(0)
    encoder = build_inside('uniform', ratio=0.5)
    plain = MODELS.build(dict(
        ENCODER, embed_dims=(16, 24, 32), depths=(2, 2, 1),
        num_heads=(2, 2, 2), merger=None))
    plain.load_state_dict(encoder.state_dict())
    clips = torch.randn(2, 3, 8, 32, 32)
    for ratio, final in ((0.25, 16), (0.5, 32), (1.0, 64)):
        for module in encoder.modules():
            if hasattr(module, 'set_compression_ratio'):
                module.set_compression_ratio(ratio)
        assert encoder.merger.compression_ratio == ratio
        encoder.merger.calls.clear()
        feats = encoder(clips)
        assert feats.tokens.shape[1] == final
    assert encoder.merger.calls == []
    torch.testing.assert_close(feats.tokens, plain(clips).tokens)


@pytest.mark.parametrize('attention', SELF_ATTENTIONS)
def test_every_attention_runs_after_merges_inside_a_stage(attention):
    """Blocks of stage 1 after a merge get sizes and no grid at the width
    of the stage: every attention must take it, forward and backward."""
    torch.manual_seed(0)
    encoder = build_inside('front', attention=attention)
    feats = encoder(torch.randn(2, 3, 8, 32, 32))
    assert feats.tokens.shape == (2, 16, 32)
    assert torch.isfinite(feats.tokens).all()
    feats.tokens.square().mean().backward()
    grads = [p.grad for p in encoder.stages[0][1].parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_merge_after_errors():
    with pytest.raises(ValueError, match='merge_after'):
        MODELS.build(dict(ENCODER, merge_after=(1, )))  # the last block
    with pytest.raises(ValueError, match='merge_after'):
        MODELS.build(dict(ENCODER, merge_after=(-1, )))

import pytest
import torch
import torch.nn as nn

from hvlm.structures import VideoFeatures
from hvlm.models.mergers import unmerge
from hvlm.registry import ATTENTIONS, MODELS

TINY = dict(
    type='HierarchicalVideoEncoder',
    patch_size=(2, 4, 4),
    embed_dims=(12, 24),
    depths=(1, 1),
    num_heads=(2, 3),
    drop_path_rate=0.)


def build(**kwargs):
    cfg = dict(TINY)
    cfg.update(kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('thw, grid, final', [
    ((4, 16, 16), (2, 4, 4), 2 * 2 * 2),
    ((5, 18, 13), (3, 5, 4), 3 * 3 * 2),  # nothing divides: padded, ceil
    ((2, 4, 4), (1, 1, 1), 1),
])
def test_output_shapes(thw, grid, final):
    torch.manual_seed(0)
    encoder = build()
    feats = encoder(torch.randn(2, 3, *thw))
    assert isinstance(feats, VideoFeatures)
    assert feats.grid == grid
    assert feats.num_frames == thw[0] and feats.temporal_patch == 2
    assert feats.tokens.shape == (2, final, 24)
    assert feats.size.shape == (2, final)
    n0 = grid[0] * grid[1] * grid[2]
    assert feats.index.shape == (2, n0)
    assert feats.size.sum(1).tolist() == [n0, n0]  # every tubelet counted
    assert feats.frame_features().shape == (2, grid[0], 24)
    assert feats.pooled().shape == (2, 24)


def test_index_and_size_are_consistent():
    """size must count the tubelets index sends to each token."""
    encoder = build(merger=dict(type='SpatialPoolMerger', kernel=(2, 2, 2)))
    feats = encoder(torch.randn(1, 3, 6, 12, 20))  # grid (3, 3, 5)
    counts = torch.bincount(feats.index[0], minlength=feats.tokens.shape[1])
    assert counts.tolist() == feats.size[0].tolist()
    assert sorted(set(feats.size[0].tolist())) == [1., 2., 4., 8.]


def test_video_features_readers_match_definitions():
    tokens = torch.randn(1, 2, 3)
    index = torch.tensor([[0, 0, 1, 0, 1, 1, 1, 1]])  # grid (2, 2, 2)
    size = torch.tensor([[3., 5.]])
    feats = VideoFeatures(tokens, size, index, (2, 2, 2), 2, 4)
    per_tubelet = unmerge(tokens, index).reshape(1, 2, 4, 3)
    torch.testing.assert_close(feats.frame_features(), per_tubelet.mean(2))
    torch.testing.assert_close(
        feats.frame_features('max'), per_tubelet.amax(2))
    with pytest.raises(ValueError, match='reduce'):
        feats.frame_features('median')
    torch.testing.assert_close(feats.pooled(),
                               (3 * tokens[:, 0] + 5 * tokens[:, 1]) / 8)


def test_merger_none_keeps_every_token():
    encoder = build(merger=None)
    feats = encoder(torch.randn(1, 3, 4, 16, 16))
    assert feats.tokens.shape == (1, 32, 24)
    assert torch.equal(feats.size, torch.ones(1, 32))
    assert feats.index[0].tolist() == list(range(32))


class RecordingAttention(nn.Module):
    """A minimal third-party attention: only the contract's arguments."""
    calls = []

    def __init__(self, embed_dims, num_heads):
        super().__init__()
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x, *, shape=None, size=None, memory=None):
        RecordingAttention.calls.append(
            (tuple(x.shape), shape, None if size is None else size.clone()))
        return self.proj(x)


def test_attention_is_chosen_by_config():
    ATTENTIONS.register_module(
        name='_TestRecordingAttention', module=RecordingAttention, force=True)
    RecordingAttention.calls.clear()
    encoder = build(attention=dict(type='_TestRecordingAttention'))
    assert all(
        isinstance(block.attn, RecordingAttention)
        for stage in encoder.stages for block in stage)
    encoder(torch.randn(2, 3, 4, 16, 12))  # grid (2, 4, 3)
    (s1_shape, s1_grid, s1_size), (s2_shape, s2_grid, s2_size) = \
        RecordingAttention.calls
    assert s1_shape == (2, 24, 12) and s1_grid == (2, 4, 3)
    assert s1_size is None  # unmerged tokens: fast path
    assert s2_shape == (2, 2 * 2 * 2, 24) and s2_grid == (2, 2, 2)
    # a (1, 2, 2) merge of a 4 x 3 frame: cells of 4 and 2 tubelets
    assert s2_size[0].tolist() == [4., 2., 4., 2.] * 2


@pytest.mark.parametrize('with_cp', [False, True])
def test_gradients_reach_every_parameter(with_cp):
    torch.manual_seed(0)
    encoder = build(with_cp=with_cp, drop_path_rate=0.1)
    encoder.train()
    x = torch.randn(2, 3, 4, 16, 16)
    feats = encoder(x)
    (feats.tokens.square().mean() + feats.frame_features().mean()).backward()
    missing = [
        name for name, p in encoder.named_parameters()
        if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert not missing


def test_checkpointing_gives_the_same_gradients():
    torch.manual_seed(0)
    plain = build()
    checkpointed = build(with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    x = torch.randn(1, 3, 4, 16, 16)
    for model in (plain, checkpointed):
        model(x).tokens.sum().backward()
    for (name, a), b in zip(plain.named_parameters(),
                            checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad, msg=name)


def test_config_errors():
    with pytest.raises(ValueError, match='equal length'):
        build(depths=(1, 1, 1))
    with pytest.raises(ValueError, match='patch_size'):
        build(patch_size=(2, 4))
    with pytest.raises(ValueError, match=r'shape \(3, 4, 16, 16\)'):
        build()(torch.randn(3, 4, 16, 16))


def test_a_merger_without_plan_runs_at_every_merge_point():
    """SpatialPoolMerger has no plan: it pools the grid at each point,
    inside a stage as well as between stages."""
    encoder = build(depths=(2, 1), merge_after=(0, 1),
                    merger=dict(type='SpatialPoolMerger', kernel=(1, 2, 2)))
    feats = encoder(torch.randn(2, 3, 4, 16, 16))  # grid (2, 4, 4)
    assert feats.tokens.shape == (2, 2, 24)  # (2, 2, 2) -> (2, 1, 1)
    assert feats.size.tolist() == [[16., 16.]] * 2
    assert feats.index[0].tolist() == [0] * 16 + [1] * 16
    assert build(merge_after=()).merge_after == ()
    assert build(merge_after=()).forward(
        torch.randn(1, 3, 4, 16, 16)).tokens.shape == (1, 32, 24)

import pytest
import torch
import torch.nn.functional as F

from hvlm.models.mergers import MergeInfo, compose, merge_tokens, unmerge
from hvlm.registry import MERGERS


def grid_tokens(B, C, T, H, W):
    """Random tokens in (t, h, w) order plus the same as a [B, C, T, H, W]
    volume."""
    vol = torch.randn(B, C, T, H, W)
    return vol.flatten(2).transpose(1, 2), vol  # [B, T*H*W, C]


def test_equals_average_pooling():
    merger = MERGERS.build(dict(type='SpatialPoolMerger', kernel=(2, 2, 2)))
    x, vol = grid_tokens(2, 5, 4, 6, 8)
    info = merger(x, shape=(4, 6, 8))
    assert isinstance(info, MergeInfo)
    pooled = F.avg_pool3d(vol, 2)  # [B, C, 2, 3, 4]
    torch.testing.assert_close(info.x, pooled.flatten(2).transpose(1, 2))
    assert info.shape == (2, 3, 4)
    torch.testing.assert_close(info.size, torch.full((2, 24), 8.))


def test_size_weighting():
    merger = MERGERS.build(dict(type='SpatialPoolMerger'))
    x, _ = grid_tokens(1, 3, 1, 2, 2)
    size = torch.tensor([[1., 2., 3., 4.]])
    info = merger(x, shape=(1, 2, 2), size=size)
    expected = (x * size[..., None]).sum(1, keepdim=True) / 10.
    torch.testing.assert_close(info.x, expected)
    torch.testing.assert_close(info.size, torch.tensor([[10.]]))


def test_odd_sizes_make_partial_cells():
    merger = MERGERS.build(dict(type='SpatialPoolMerger'))
    x, vol = grid_tokens(1, 2, 2, 3, 5)
    info = merger(x, shape=(2, 3, 5))
    assert info.shape == (2, 2, 3)
    # ceil_mode + count_include_pad=False averages only the real tokens.
    pooled = F.avg_pool3d(
        vol, (1, 2, 2), ceil_mode=True, count_include_pad=False)
    torch.testing.assert_close(info.x, pooled.flatten(2).transpose(1, 2))
    sizes = info.size.reshape(2, 2, 3)
    assert sizes[0].tolist() == [[4., 4., 2.], [2., 2., 1.]]
    assert info.size.sum() == 30


def test_unmerge_gives_each_token_its_merged_value():
    merger = MERGERS.build(dict(type='SpatialPoolMerger'))
    x, _ = grid_tokens(2, 4, 1, 4, 4)
    info = merger(x, shape=(1, 4, 4))
    back = unmerge(info.x, info.index)  # [B, 16, C]
    # token (h=1, w=2) is in cell (0, 1), slot 1
    torch.testing.assert_close(back[:, 1 * 4 + 2], info.x[:, 1])
    # and the unmerged tokens re-merge to themselves
    again, _ = merge_tokens(back, torch.ones(2, 16), info.index, 4)
    torch.testing.assert_close(again, info.x)


def test_compose_of_two_merges_equals_composite_merge():
    first = MERGERS.build(dict(type='SpatialPoolMerger', kernel=(1, 2, 2)))
    second = MERGERS.build(dict(type='SpatialPoolMerger', kernel=(2, 1, 2)))
    x, _ = grid_tokens(2, 3, 4, 5, 6)
    a = first(x, shape=(4, 5, 6))
    b = second(a.x, shape=a.shape, size=a.size)
    index = compose(a.index, b.index)  # [B, 120]
    direct, direct_size = merge_tokens(x, torch.ones(2, 120), index,
                                       b.x.shape[1])
    torch.testing.assert_close(b.x, direct)
    torch.testing.assert_close(b.size, direct_size)


def test_errors():
    merger = MERGERS.build(dict(type='SpatialPoolMerger'))
    with pytest.raises(ValueError, match='shape=None'):
        merger(torch.randn(1, 4, 2), shape=None)
    with pytest.raises(ValueError, match='N=4'):
        merger(torch.randn(1, 4, 2), shape=(1, 3, 3))
    with pytest.raises(ValueError, match='kernel'):
        MERGERS.build(dict(type='SpatialPoolMerger', kernel=(0, 2, 2)))

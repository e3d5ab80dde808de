import torch

from hvlm.models.layers import sincos_position_embedding_3d


def test_factorised_and_any_grid():
    embed = sincos_position_embedding_3d((3, 4, 5), 32)
    assert embed.shape == (60, 32)
    grid = embed.reshape(3, 4, 5, 32)
    # 32 // 6 = 5 frequencies -> 10 channels per axis, 2 zero channels.
    t, h, w = grid[..., :10], grid[..., 10:20], grid[..., 20:30]
    assert torch.equal(t[:, :1, :1].expand_as(t), t)  # depends on t only
    assert torch.equal(h[:1, :, :1].expand_as(h), h)
    assert torch.equal(w[:1, :1, :].expand_as(w), w)
    assert torch.all(grid[..., 30:] == 0)
    # distinct positions get distinct codes
    assert torch.cdist(embed, embed).add(torch.eye(60)).min() > 0
    # the code of a position does not depend on the grid size
    bigger = sincos_position_embedding_3d((6, 8, 9), 32).reshape(6, 8, 9, 32)
    torch.testing.assert_close(bigger[:3, :4, :5], grid)
    # first frequency of an axis is sin(pos), cos(pos)
    torch.testing.assert_close(w[0, 0, :, 0], torch.arange(5.).sin())
    torch.testing.assert_close(w[0, 0, :, 5], torch.arange(5.).cos())

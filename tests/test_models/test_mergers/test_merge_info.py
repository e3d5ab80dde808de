import torch

from hvlm.models.mergers import compose, merge_tokens, unmerge


def test_merge_tokens_is_size_weighted_mean():
    x = torch.tensor([[[1.], [3.], [10.]]])  # [1, 3, 1]
    size = torch.tensor([[1., 3., 2.]])
    index = torch.tensor([[0, 0, 1]])
    merged, merged_size = merge_tokens(x, size, index, 2)
    torch.testing.assert_close(merged, torch.tensor([[[2.5], [10.]]]))
    torch.testing.assert_close(merged_size, torch.tensor([[4., 2.]]))


def test_unmerge_and_compose():
    y = torch.tensor([[[5.], [7.]]])
    index = torch.tensor([[1, 0, 1]])
    torch.testing.assert_close(unmerge(y, index),
                               torch.tensor([[[7.], [5.], [7.]]]))
    a = torch.tensor([[2, 0, 1, 2]])  # 4 originals -> 3 slots
    b = torch.tensor([[1, 0, 1]])  # 3 slots -> 2 slots
    assert compose(a, b).tolist() == [[1, 1, 0, 1]]


def test_merge_tokens_counts_exactly_in_bf16():
    """Sizes past 256 are not integers in bf16; merging must not round."""
    x = torch.ones(1, 3, 2, dtype=torch.bfloat16)
    size = torch.tensor([[257., 1., 3.]])
    merged, merged_size = merge_tokens(x, size, torch.zeros(1, 3).long(), 1)
    assert merged.dtype == torch.bfloat16
    assert merged_size.dtype == torch.float32
    assert merged_size.item() == 261.

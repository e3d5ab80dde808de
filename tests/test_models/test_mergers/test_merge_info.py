import torch

from hvlm.models.mergers import compose, merge_tokens, unmerge
from hvlm.structures.merge_info import gather_rows, sum_tokens


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


def test_row_sums_and_gathers_match_their_definitions():
    """gather_rows (per-clip indexing), sum_tokens and merge_tokens (one-hot
    products), on channel-major tokens (the layout the patch embedding
    leaves) and with unit sizes (``size=None``), forward and backward."""
    torch.manual_seed(0)
    B, N, C, K = 3, 10, 4, 6
    x = torch.randn(B, C, N).transpose(1, 2).requires_grad_(True)
    index = torch.randint(0, K, (B, N))
    index[:, :K] = torch.arange(K)  # every slot joined
    order = torch.stack([torch.randperm(N) for _ in range(B)])
    torch.testing.assert_close(gather_rows(x, order),
                               torch.stack([x[b, order[b]] for b in range(B)]))
    one_hot = torch.nn.functional.one_hot(index, K).float()  # [B, N, K]
    sums = one_hot.transpose(1, 2) @ x  # [B, K, C]
    torch.testing.assert_close(sum_tokens(x, index, K), sums)
    counts = one_hot.sum(1)  # [B, K]
    merged, size = merge_tokens(x, None, index, K)
    torch.testing.assert_close(size, counts)
    torch.testing.assert_close(merged, sums / counts[..., None])
    weights = torch.rand(B, K, C)
    grad, = torch.autograd.grad((merged * weights).sum(), x)
    ref, = torch.autograd.grad((sums / counts[..., None] * weights).sum(), x)
    torch.testing.assert_close(grad, ref)
    ones, _ = merge_tokens(x, torch.ones(B, N), index, K)
    torch.testing.assert_close(ones, merged)

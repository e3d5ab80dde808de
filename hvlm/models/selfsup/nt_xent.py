"""NT-Xent, SimCLR's contrastive loss, with negatives from every rank."""
from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from mmengine.dist import get_rank, get_world_size
from torch import Tensor


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward hands every rank the sum, over all ranks'
    losses, of the gradient with respect to its own rows."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts, dim=0)  # [W * n, D]

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over the ranks' losses
        start = dist.get_rank() * ctx.rows
        return grad[start:start + ctx.rows]


def gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` ``[n, D]`` of every rank along dim 0, keeping the
    gradient path to every rank's ``x`` (the backward sums the gradients
    each rank's loss sends to ``x``). Every rank must pass the same ``n``.
    One process: ``x`` itself."""
    if get_world_size() == 1:
        return x
    return _GatherWithGrad.apply(x)


def nt_xent_loss(z1: Tensor, z2: Tensor, temperature: float,
                 gather: bool = True) -> Tuple[Tensor, Tensor]:
    """SimCLR's loss over the 2N views of N samples (N over all ranks).

    With ``u`` the L2-normalised projections and ``s_ij = u_i . u_j``,
    each view ``i`` has one positive ``p(i)`` (the other view of its
    sample) and ``2N - 2`` negatives (both views of every other sample),
    so ``2N - 1`` candidates in all::

        l_i = -log( exp(s_ip / t) / sum_{k != i} exp(s_ik / t) )
        L   = mean_i l_i

    This is the paper's formula (Chen et al. 2020, eq. 1) and the one of
    mmpretrain's SimCLR and lightly's ``NTXentLoss``. With ``gather`` and
    several ranks, this rank's ``2n`` views are the anchors and every
    rank's views the candidates, with gradients through the gathered
    views; DDP's mean over ranks then gives the gradient of the global
    ``L`` (checked against one process in the tests).

    Args:
        z1, z2: ``[n, D]`` projections of the two views of this rank's
            samples (row ``i`` of both is one sample).
        temperature: ``t`` > 0.
        gather: Take negatives from every rank.

    Returns:
        ``(loss, accuracy)``: the scalar mean loss over this rank's anchors
        and the fraction of them whose most similar candidate is the
        positive (no gradient).
    """
    if temperature <= 0:
        raise ValueError(f'temperature={temperature} must be > 0')
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f'z1 {tuple(z1.shape)} and z2 {tuple(z2.shape)} '
                         'must both be [n, D]')
    n = z1.shape[0]
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    if gather:
        k1, k2 = gather_with_grad(u1), gather_with_grad(u2)  # [N, D] each
        offset = get_rank() * n if get_world_size() > 1 else 0
    else:
        k1, k2, offset = u1, u2, 0
    N = k1.shape[0]
    keys = torch.cat([k1, k2])  # [2N, D]
    anchors = torch.cat([u1, u2])  # [2n, D]
    logits = anchors @ keys.t() / temperature  # [2n, 2N]
    local = torch.arange(n, device=z1.device) + offset
    self_idx = torch.cat([local, local + N])  # where each anchor sits
    positive = torch.cat([local + N, local])
    rows = torch.arange(2 * n, device=z1.device)
    logits[rows, self_idx] = float('-inf')
    loss = F.cross_entropy(logits, positive)
    accuracy = (logits.detach().argmax(1) == positive).float().mean()
    return loss, accuracy

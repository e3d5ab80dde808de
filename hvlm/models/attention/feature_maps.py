"""Feature maps that turn softmax attention into a product of two small
matrices, ``softmax(q k^T) ~ phi(q) phi(k)^T`` (Performer, linear attention),
and the projection helper both kernelised attentions share.

Pure functions so that tests can check them against explicit kernel
matrices without building a module.
"""
import math
from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def orthogonal_gaussian_matrix(num_features: int,
                               dims: int,
                               *,
                               generator: Optional[torch.Generator] = None,
                               device: Optional[torch.device] = None
                               ) -> Tensor:
    """Random projection ``W [m, d]`` whose rows are orthogonal in blocks of
    ``d`` and whose row norms follow a chi distribution with ``d`` degrees
    of freedom, i.e. the norms of ``d``-dim standard Gaussians.

    Orthogonal rows keep the marginal of each row Gaussian while making the
    random features less correlated, which lowers the variance of the
    softmax-kernel estimate (Choromanski et al., "Rethinking Attention with
    Performers", ICLR 2021, Sec. 2.4, Theorem 2).

    Args:
        num_features (int): ``m``, the number of random features.
        dims (int): ``d``, the head dimension.
        generator (torch.Generator, optional): Source of randomness.
        device (torch.device, optional): Where to put the result.

    Returns:
        Tensor: ``[m, d]`` in float32.
    """
    if num_features <= 0 or dims <= 0:
        raise ValueError(f'num_features={num_features} and dims={dims} must '
                         'be positive integers')
    blocks = []
    for _ in range(math.ceil(num_features / dims)):
        gaussian = torch.randn(dims, dims, generator=generator)  # [d, d]
        q, _ = torch.linalg.qr(gaussian)  # columns orthonormal
        blocks.append(q.T)  # rows orthonormal, [d, d]
    rows = torch.cat(blocks)[:num_features]  # [m, d]
    norms = torch.randn(num_features, dims, generator=generator).norm(dim=1)
    return (norms[:, None] * rows).to(device)  # [m, d]


def positive_random_features(x: Tensor,
                             projection: Tensor,
                             *,
                             is_query: bool,
                             eps: float = 1e-4) -> Tensor:
    """FAVOR+ positive random features of the softmax kernel.

    With ``x`` already scaled by ``d ** -0.25`` on both sides,
    ``exp(q . k) = E_w[exp(w.q - |q|^2/2) exp(w.k - |k|^2/2)]`` for
    ``w ~ N(0, I)`` (Performer paper, Lemma 1). Every feature is positive, so
    the estimated attention weights are too and the normaliser never comes
    close to zero - the failure mode of the trigonometric features.

    Numerical stabilisation: the exponent is shifted by its maximum before
    ``exp``. Queries use a per-row maximum (a per-query constant cancels in
    the normalisation), keys a maximum over all keys and features of the
    head (a per-key constant would not cancel). The shift is detached: it
    changes nothing mathematically, so it must carry no gradient either.
    ``eps`` keeps features strictly positive, as in the reference
    implementation.

    Args:
        x (Tensor): ``[..., N, d]`` queries or keys, *unscaled*.
        projection (Tensor): ``[m, d]`` random projection.
        is_query (bool): Choose the query or the key stabiliser.
        eps (float): Added to every feature after ``exp``.

    Returns:
        Tensor: ``[..., N, m]`` features.
    """
    dims = x.shape[-1]
    num_features = projection.shape[0]
    # d^-1/4 goes into the projection ([m, d]) rather than onto x
    # ([..., N, d]); m^-1/2 into the exponent and eps. One pass over the
    # [..., N, m] logits then forms the features, and autograd keeps one
    # [..., N, m] tensor (exp's output) per call.
    scale = dims**-0.25
    proj_x = x @ (projection.to(x.dtype).T * scale)  # [..., N, m]
    half_sq_norm = x.square().sum(-1, keepdim=True) * (scale**2 / 2)
    with torch.no_grad():  # the shift carries no gradient; keep no graph
        if is_query:
            shift = proj_x.amax(dim=-1, keepdim=True)  # [..., N, 1]
        else:
            shift = proj_x.amax(dim=(-1, -2), keepdim=True)  # [..., 1, 1]
    offset = half_sq_norm + (shift + 0.5 * math.log(num_features))
    return _ExpPlus.apply(proj_x, offset, eps * num_features**-0.5)


class _ExpPlus(torch.autograd.Function):
    """``exp(x - offset) + c`` for ``x [..., N, m]``, ``offset [..., N, 1]``,
    computed in place in ``x`` (a temporary of the caller) and saving only
    the result: the gradient ``exp(x - offset)`` is the result minus ``c``.
    A fresh ``[..., N, m]`` tensor costs page faults as well as memory, so
    this takes a fraction of the time of the out-of-place chain."""

    @staticmethod
    def forward(ctx, x: Tensor, offset: Tensor, c: float) -> Tensor:
        x.sub_(offset).exp_().add_(c)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x)
        ctx.c = c
        return x

    @staticmethod
    def backward(ctx, grad: Tensor):
        out, = ctx.saved_tensors
        grad_x = (out - ctx.c).mul_(grad)
        return grad_x, -grad_x.sum(-1, keepdim=True), None


def _elu_plus_one(x: Tensor) -> Tensor:
    return F.elu(x) + 1


def _relu(x: Tensor) -> Tensor:
    return F.relu(x)


# Kernels of linear attention (Katharopoulos et al., "Transformers are
# RNNs", ICML 2020): any map to non-negative features gives a valid
# similarity phi(q) . phi(k) >= 0. elu(x) + 1 is their choice: positive
# everywhere and with a non-zero gradient for negative inputs.
LINEAR_KERNELS: Dict[str, Callable[[Tensor], Tensor]] = {
    'elu': _elu_plus_one,
    'relu': _relu,
}


def linear_kernel(kernel_type: str) -> Callable[[Tensor], Tensor]:
    """The feature map ``phi`` of a linear-attention kernel by name."""
    if kernel_type not in LINEAR_KERNELS:
        raise ValueError(f'kernel_type={kernel_type!r} is not one of '
                         f'{sorted(LINEAR_KERNELS)}')
    return LINEAR_KERNELS[kernel_type]


def normalised_linear_attention(q_feats: Tensor,
                                k_feats: Tensor,
                                v: Tensor,
                                eps: float = 0.) -> Tensor:
    """``D^-1 phi(Q) (phi(K)^T V)`` with ``D = diag(phi(Q) phi(K)^T 1)``.

    Associativity is the whole trick: ``phi(K)^T V`` is ``[m, d]``, so the
    cost is ``O(N m d)`` and no ``N x N`` matrix is ever formed.

    Args:
        q_feats (Tensor): ``[..., N, m]`` non-negative query features.
        k_feats (Tensor): ``[..., M, m]`` non-negative key features.
        v (Tensor): ``[..., M, d]`` values.
        eps (float): Guards the normaliser where features can all be 0
            (ReLU kernel); FAVOR+ features are strictly positive and use 0.

    Returns:
        Tensor: ``[..., N, d]``.
    """
    # A column of ones next to v makes phi(K)^T 1 (the normaliser's key
    # sum) the last column of the context: numerator and normaliser then
    # come from one [N, m] x [m, d + 1] product instead of a second pass
    # over the [N, m] query features.
    ones = v.new_ones(v.shape[:-1] + (1, ))
    context = k_feats.transpose(-1, -2) @ torch.cat([v, ones],
                                                    -1)  # [..., m, d + 1]
    out = q_feats @ context  # [..., N, d + 1]
    return out[..., :-1] / (out[..., -1:] + eps)  # [..., N, d]


def project_heads(attn: torch.nn.Module,
                  x: Tensor,
                  size: Optional[Tensor] = None,
                  memory: Optional[Tensor] = None
                  ) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """Queries, keys and values of a :class:`FullAttention`-style module
    (``qkv`` linear, ``embed_dims``, ``num_heads``), memory keys in front.

    Args:
        attn (nn.Module): Has ``qkv``, ``embed_dims``, ``num_heads``,
            ``head_dims`` and ``_key_value_of`` as :class:`FullAttention`.
        x (Tensor): ``[B, N, C]`` tokens.
        size (Tensor, optional): ``[B, N]`` tokens per merged token.
        memory (Tensor, optional): ``[B, M, C]`` extra keys/values.

    Returns:
        tuple: ``q [B, h, N, d]``, ``k, v [B, h, M + N, d]`` and the key
        sizes ``[B, M + N]`` (memory entries count 1), or ``None`` when
        ``size`` is ``None``.
    """
    B, N, C = x.shape
    if C != attn.embed_dims:
        raise ValueError(f'x has {C} channels, expected '
                         f'embed_dims={attn.embed_dims}')
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dims)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, h, N, d]
    if size is not None and tuple(size.shape) != (B, N):
        raise ValueError(f'size has shape {tuple(size.shape)}, '
                         f'expected [B, N] = [{B}, {N}]')
    if memory is not None:
        if memory.dim() != 3 or memory.shape[0] != B or memory.shape[2] != C:
            raise ValueError(f'memory has shape {tuple(memory.shape)}, '
                             f'expected [B={B}, M, C={C}]')
        mem_k, mem_v = attn._key_value_of(memory)  # each [B, h, M, d]
        k = torch.cat([mem_k, k], dim=2)  # [B, h, M + N, d]
        v = torch.cat([mem_v, v], dim=2)  # [B, h, M + N, d]
        if size is not None:
            size = F.pad(size, (memory.shape[1], 0), value=1.)  # [B, M + N]
    return q, k, v, size

"""The selective scan of Mamba (Gu & Dao, "Mamba: Linear-Time Sequence
Modeling with Selective State Spaces", 2023, Algorithm 2) in pure PyTorch:
chunked, free of per-token Python loops, linear in the sequence length, and
able to continue from a carried state.

The recurrence, per channel ``d`` and state index ``n``::

    h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t      # [B, D, S]
    y_t = sum_n C_t[n] h_t[:, n] + D u_t                 # [B, D]

How it is computed without a loop over tokens. With the log-decays
``a_t = delta_t A <= 0`` and their running sum ``L_t = a_1 + ... + a_t``,
``h_t = exp(L_t) (h_0 + sum_{s<=t} exp(-L_s) delta_s B_s u_s)``: a cumulative
sum. ``exp(-L_s)`` grows without bound, so this is done only over short
chunks (``chunk_size`` tokens), in float64, with every log-decay clipped at
``-36``: ``exp(-36) = 2e-16`` is zero at float32 precision, so the clip
changes nothing one can observe, and ``|L| <= 36 * chunk_size = 576`` stays
far inside float64's range (``exp(709)``). Chunk-end states are then chained
by the same cumulative-sum formula one level up (chunks of a block), and
blocks (``block_size`` tokens) by a short recurrence whose state is exactly
the carried state of the public API. Each block is gradient-checkpointed, so
training keeps only ``O(N D)`` activations; the ``[T, D, S]`` states of one
block are the only large temporaries.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

try:  # the fused CUDA kernels of the reference implementation
    from mamba_ssm.ops.selective_scan_interface import \
        selective_scan_fn as _mamba_ssm_scan
except ImportError:  # CPU-only installs: the PyTorch path below
    _mamba_ssm_scan = None

# exp(-LOG_DECAY_FLOOR) is below float32 resolution; see the module docstring.
LOG_DECAY_FLOOR = 36.


def _chunk_cumsum_scan(log_decay: Tensor, inputs: Tensor,
                       h0: Optional[Tensor], dim: int) -> Tensor:
    """``h_t = exp(a_t) h_{t-1} + x_t`` along ``dim`` by one cumulative sum.

    Args:
        log_decay (Tensor): ``a``, clipped log-decays, float64.
        inputs (Tensor): ``x``, same shape, float64.
        h0 (Tensor, optional): state before the first step, broadcastable
            after ``unsqueeze(dim)``; ``None`` for zeros.
        dim (int): The time axis (short: at most ``chunk_size`` steps).

    Returns:
        Tensor: every ``h_t``, same shape as ``inputs``.
    """
    cum = log_decay.cumsum(dim)  # L_t
    acc = ((-cum).exp() * inputs).cumsum(dim)
    if h0 is not None:
        acc = acc + h0.unsqueeze(dim)
    return cum.exp() * acc


def _scan_block(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                h0: Tensor, chunk_size: int) -> Tuple[Tensor, Tensor]:
    """One block: ``y`` without the skip term, and the state after it.

    Args:
        u, delta (Tensor): ``[B, T, D]``.
        A (Tensor): ``[D, S]``, negative.
        B, C (Tensor): ``[B, T, S]``.
        h0 (Tensor): ``[B, D, S]`` state before the block.
        chunk_size (int): ``Q``.

    Returns:
        tuple: ``y [B, T, D]`` (float64) and ``h_T [B, D, S]`` (float64).
    """
    batch, T, D = u.shape
    S = A.shape[1]
    nc = -(-T // chunk_size)
    pad = nc * chunk_size - T
    f64 = torch.float64
    u, delta, B, C = (t.to(f64) for t in (u, delta, B, C))
    if pad:  # delta = 0: decay 1 and no input, the state passes unchanged
        u, delta, B, C = (F.pad(t, (0, 0, 0, pad)) for t in (u, delta, B, C))
    shape = (batch, nc, chunk_size, D, S)
    log_decay = (delta[..., None] * A.to(f64)).clamp(
        min=-LOG_DECAY_FLOOR).view(shape)  # [B, nc, Q, D, S]
    inputs = ((delta * u)[..., None] *
              B[:, :, None, :]).view(shape)  # [B, nc, Q, D, S]

    # Level 1: states within each chunk, starting from zero:
    # exp(L_t) * cumsum(exp(-L_s) x_s). |L| <= 36 Q, so exp(-L) = 1 / exp(L)
    # neither overflows nor underflows in float64.
    cum = log_decay.cumsum(2)  # [B, nc, Q, D, S]
    growth = cum.exp()
    intra = growth * (growth.reciprocal() * inputs).cumsum(2)
    # Level 2: chain the chunk-end states from h0, by the same formula.
    chunk_decay = cum[:, :, -1].clamp(min=-LOG_DECAY_FLOOR)  # [B, nc, D, S]
    ends = _chunk_cumsum_scan(chunk_decay, intra[:, :, -1], h0.to(f64),
                              dim=1)  # [B, nc, D, S]
    starts = torch.cat([h0.to(f64)[:, None], ends[:, :-1]],
                       dim=1)  # [B, nc, D, S]
    states = torch.addcmul(intra, growth,
                           starts[:, :, None])  # [B, nc, Q, D, S]
    states = states.view(batch, nc * chunk_size, D, S)
    y = torch.einsum('btds,bts->btd', states, C)[:, :T]  # [B, T, D]
    return y, ends[:, -1]


def selective_scan(u: Tensor,
                   delta: Tensor,
                   A: Tensor,
                   B: Tensor,
                   C: Tensor,
                   D: Optional[Tensor] = None,
                   z: Optional[Tensor] = None,
                   delta_bias: Optional[Tensor] = None,
                   delta_softplus: bool = False,
                   initial_state: Optional[Tensor] = None,
                   chunk_size: int = 16,
                   block_size: int = 256,
                   use_kernel: bool = True) -> Tuple[Tensor, Tensor]:
    """Selective scan over token-major tensors.

    Args:
        u (Tensor): ``[B, L, D]`` inputs.
        delta (Tensor): ``[B, L, D]`` step sizes (before ``delta_bias`` and
            softplus if those are given).
        A (Tensor): ``[D, S]`` continuous-time transition; must be negative
            (Mamba uses ``-exp(A_log)``) for the state to decay.
        B, C (Tensor): ``[B, L, S]`` input-dependent input/output matrices.
        D (Tensor, optional): ``[D]`` skip connection.
        z (Tensor, optional): ``[B, L, D]`` gate: ``y * silu(z)``.
        delta_bias (Tensor, optional): ``[D]`` added to ``delta``.
        delta_softplus (bool): Apply softplus to ``delta`` (after the bias).
        initial_state (Tensor, optional): ``[B, D, S]`` carried state;
            zeros if ``None``.
        chunk_size (int): Tokens per cumulative-sum chunk; at most 19 (the
            float64 bound of the module docstring).
        block_size (int): Tokens per checkpointed block; a multiple of
            ``chunk_size``, at most ``19 * chunk_size``.
        use_kernel (bool): Use ``mamba_ssm``'s CUDA kernel when it is
            installed, the tensors are on a GPU and no state is carried in.

    Returns:
        tuple: ``y [B, L, D]`` in ``u``'s dtype and the final state
        ``[B, D, S]`` in float32, to pass as ``initial_state`` of the next
        call (chunk by chunk equals one shot).
    """
    batch, L, dims = u.shape
    if delta.shape != u.shape:
        raise ValueError(f'delta has shape {tuple(delta.shape)}, expected '
                         f'the shape of u {tuple(u.shape)}')
    if A.dim() != 2 or A.shape[0] != dims:
        raise ValueError(f'A has shape {tuple(A.shape)}, expected [D={dims},'
                         ' S]')
    S = A.shape[1]
    for name, t in (('B', B), ('C', C)):
        if tuple(t.shape) != (batch, L, S):
            raise ValueError(f'{name} has shape {tuple(t.shape)}, expected '
                             f'[B, L, S] = [{batch}, {L}, {S}]')
    if not 0 < chunk_size <= 19:
        raise ValueError(f'chunk_size={chunk_size} must be in [1, 19] so '
                         'that exp(36 * chunk_size) fits in float64')
    if block_size % chunk_size or not 0 < block_size <= 19 * chunk_size:
        raise ValueError(
            f'block_size={block_size} must be a positive multiple of '
            f'chunk_size={chunk_size} and at most {19 * chunk_size}')
    if initial_state is not None and tuple(
            initial_state.shape) != (batch, dims, S):
        raise ValueError(f'initial_state has shape '
                         f'{tuple(initial_state.shape)}, expected [B, D, S] '
                         f'= [{batch}, {dims}, {S}]')

    if (use_kernel and _mamba_ssm_scan is not None and u.is_cuda
            and initial_state is None):
        y, last = _mamba_ssm_scan(
            u.transpose(1, 2), delta.transpose(1, 2), A,
            B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(),
            D, None if z is None else z.transpose(1, 2), delta_bias,
            delta_softplus, return_last_state=True)  # y [B, D, L]
        return y.transpose(1, 2), last.float()

    with torch.autocast(device_type=u.device.type, enabled=False):
        return _scan_pytorch(u, delta, A, B, C, D, z, delta_bias,
                             delta_softplus, initial_state, chunk_size,
                             block_size)


def _scan_pytorch(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                  D: Optional[Tensor], z: Optional[Tensor],
                  delta_bias: Optional[Tensor], delta_softplus: bool,
                  initial_state: Optional[Tensor], chunk_size: int,
                  block_size: int) -> Tuple[Tensor, Tensor]:
    """The chunked scan; arguments as :func:`selective_scan`."""
    batch, L, dims = u.shape
    S = A.shape[1]
    out_dtype = u.dtype
    delta = delta.float()
    if delta_bias is not None:
        delta = delta + delta_bias.float()
    if delta_softplus:
        delta = F.softplus(delta)
    state = u.new_zeros(batch, dims, S, dtype=torch.float64) \
        if initial_state is None else initial_state.to(torch.float64)
    ys = []
    for start in range(0, L, block_size):
        part = slice(start, start + block_size)
        args = (u[:, part], delta[:, part], A, B[:, part], C[:, part], state,
                chunk_size)
        if torch.is_grad_enabled() and any(
                t.requires_grad for t in (u, delta, A, B, C, state)):
            y, state = checkpoint(_scan_block, *args, use_reentrant=False)
        else:
            y, state = _scan_block(*args)
        ys.append(y)
    y = torch.cat(ys, dim=1)  # [B, L, D], float64
    if D is not None:
        y = y + u.to(torch.float64) * D.to(torch.float64)
    if z is not None:
        y = y * F.silu(z.to(torch.float64))
    return y.to(out_dtype), state.float()

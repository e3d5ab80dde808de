"""The selective scan of Mamba (Gu & Dao, "Mamba: Linear-Time Sequence
Modeling with Selective State Spaces", 2023, Algorithm 2) in pure PyTorch:
exact, linear in the sequence length, with a hand-written backward pass, and
able to continue from a carried state.

The recurrence, per channel ``d`` and state index ``n``::

    h_t = exp(delta_t A) * h_{t-1} + delta_t B_t u_t      # [B, D, S]
    y_t = sum_n C_t[n] h_t[:, n] + D u_t                 # [B, D]

Why it is computed this way. The work is ``O(L D S)`` elementwise with
``D S = 2C x 16`` per token, so what matters on a CPU is how often the
``[L, D, S]`` states travel through memory, not the arithmetic. The tokens
are taken in blocks of ``block_size``; a block's decays ``exp(delta A)``
and inputs ``delta B u`` (``[T, B, D, S]``, a few MB) are formed with a
couple of vectorised ops into buffers reused by every block, so they stay in
cache; the recurrence then runs as one in-place ``h_t += a_t h_{t-1}`` per
token on a ``[B, D, S]`` slice. That is the recurrence itself, in the input's
precision, so it is exact where the decays underflow and needs no
log-space rescaling. Only each block's start state is kept (``[L / T, B, D,
S]``); the backward pass (:class:`_SelectiveScanFn`) recomputes a block's
states from it and runs the adjoint recurrence
``g_t = dy_t C_t + exp(delta_{t+1} A) g_{t+1}`` backwards, from which every
input gradient is a reduction over ``D`` or ``S``. Autograd never sees the
``[L, D, S]`` intermediates, so training keeps ``O(L D)`` activations.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

try:  # the fused CUDA kernels of the reference implementation
    from mamba_ssm.ops.selective_scan_interface import \
        selective_scan_fn as _mamba_ssm_scan
except ImportError:  # CPU-only installs: the PyTorch path below
    _mamba_ssm_scan = None


def _block_states(u: Tensor, delta: Tensor, A: Tensor, B: Tensor,
                  h0: Tensor, decay: Tensor,
                  states: Tensor) -> Tuple[Tensor, Tensor]:
    """Decays and states of one block, written into the given buffers.

    Args:
        u, delta (Tensor): ``[T, B, D]`` (time-major).
        A (Tensor): ``[D, S]``.
        B (Tensor): ``[T, B, S]``.
        h0 (Tensor): ``[B, D, S]`` state before the block.
        decay, states (Tensor): Buffers ``[>= T, B, D, S]``.

    Returns:
        tuple: ``exp(delta A)`` and every ``h_t``, both ``[T, B, D, S]``
        views of the buffers.
    """
    T = u.shape[0]
    decay, states = decay[:T], states[:T]
    torch.mul(delta.unsqueeze(-1), A, out=decay).exp_()
    torch.mul((delta * u).unsqueeze(-1), B.unsqueeze(-2), out=states)
    h = h0
    for a_t, h_t in zip(decay.unbind(0), states.unbind(0)):
        h = h_t.addcmul_(a_t, h)  # h_t = a_t * h_{t-1} + x_t, in place
    return decay, states


def _gate(y: Tensor, u: Tensor, skip: Optional[Tensor],
          z: Optional[Tensor]) -> Tensor:
    """``(y + skip u) * silu(z)`` (either part optional); new tensor."""
    if skip is not None:
        y = torch.addcmul(y, u, skip)
    return y * F.silu(z) if z is not None else y


class _SelectiveScanFn(torch.autograd.Function):
    """The scan over time-major ``u, delta, z [L, B, D]``, ``B, C [L, B,
    S]`` from ``h0 [B, D, S]``; returns ``(y + skip u) * silu(z)``
    ``[L, B, D]`` and the last state. Skip and gate are inside so that no
    ``[L, B, D]`` intermediate of theirs is kept for the backward pass
    either. See the module docstring."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor,
                C: Tensor, skip: Optional[Tensor], z: Optional[Tensor],
                h0: Tensor, block_size: int):
        L, batch, D = u.shape
        T = max(1, min(block_size, L))
        decay = u.new_empty(T, batch, D, A.shape[1])  # [T, B, D, S]
        states = torch.empty_like(decay)
        y = u.new_empty(L, batch, D)
        starts, h = [], h0
        for start in range(0, L, T):
            part = slice(start, start + T)
            starts.append(h)
            _, hs = _block_states(u[part], delta[part], A, B[part], h, decay,
                                  states)  # [t, B, D, S]
            # Contractions over S as a row vector times a matrix,
            # C [1, S] @ h^T [S, D]: about twice as fast as h @ C [S, 1].
            torch.matmul(C[part].unsqueeze(-2), hs.transpose(-1, -2),
                         out=y[part].unsqueeze(-2))  # [t, B, 1, D]
            h = hs[-1].clone()
        out = _gate(y, u, skip, z)
        ctx.save_for_backward(u, delta, A, B, C, skip, z, *starts)
        ctx.block_size = T
        return out, h

    @staticmethod
    def backward(ctx, d_out: Optional[Tensor], dh_last: Optional[Tensor]):
        u, delta, A, B, C, skip, z, *starts = ctx.saved_tensors
        T = ctx.block_size
        L, batch, D = u.shape
        decay = u.new_empty(T, batch, D, A.shape[1])  # [T, B, D, S]
        states, grads = torch.empty_like(decay), torch.empty_like(decay)
        if d_out is None:
            d_out = torch.zeros_like(u)
        du, d_delta = torch.empty_like(u), torch.empty_like(delta)
        dB, dC, dA = torch.empty_like(B), torch.empty_like(C), \
            torch.zeros_like(A)
        d_skip = None if skip is None else torch.zeros_like(skip)
        dz = None if z is None else torch.empty_like(z)
        carry = torch.zeros_like(starts[0]) if dh_last is None else \
            dh_last.to(u.dtype).clone()  # dLoss / dh at the block's end
        for index in reversed(range(len(starts))):
            part = slice(index * T, index * T + T)
            h0 = starts[index]
            a, hs = _block_states(u[part], delta[part], A, B[part], h0,
                                  decay, states)  # [t, B, D, S]
            t = a.shape[0]
            dy = d_out[part]  # [t, B, D]
            if z is not None:  # out = pre * silu(z), pre = y + skip u
                y = (C[part].unsqueeze(-2) @ hs.transpose(-1, -2)
                     ).squeeze(-2)  # [t, B, D]
                pre = _gate(y, u[part], skip, None)
                sig = torch.sigmoid(z[part])
                # silu'(z) = sig (1 + z (1 - sig))
                dz[part] = dy * pre * sig * (1 + z[part] * (1 - sig))
                dy = dy * z[part] * sig  # [t, B, D]
            if skip is not None:
                d_skip += (dy * u[part]).sum((0, 1))
            dC[part] = (hs.transpose(-1, -2) @ dy.unsqueeze(-1)
                        ).squeeze(-1)  # [t, B, S]
            # Adjoint: g_t = dy_t C_t + a_{t+1} g_{t+1}, backwards in time.
            g = torch.mul(dy.unsqueeze(-1), C[part].unsqueeze(-2),
                          out=grads[:t])  # [t, B, D, S]
            g_steps, a_steps = g.unbind(0), a.unbind(0)
            g_steps[-1].add_(carry)
            for step in range(t - 2, -1, -1):
                g_steps[step].addcmul_(a_steps[step + 1], g_steps[step + 1])
            carry = a_steps[0] * g_steps[0]
            # x_t = delta_t u_t B_t: reductions of g over S and over D.
            d_x = (B[part].unsqueeze(-2) @ g.transpose(-1, -2)
                   ).squeeze(-2)  # [t, B, D]
            dB[part] = (g.transpose(-1, -2) @ (delta[part] * u[part])
                        .unsqueeze(-1)).squeeze(-1)  # [t, B, S]
            # a_t = exp(delta_t A): w_t = g_t * h_{t-1} * a_t is the gradient
            # of the log-decay delta_t A.
            w = a.mul_(g)
            w[1:].mul_(hs[:-1])
            w[0].mul_(h0)
            d_delta[part] = torch.mul(w, A, out=g).sum(-1) + d_x * u[part]
            dA += torch.mul(w, delta[part].unsqueeze(-1),
                            out=hs).sum((0, 1))  # [D, S]
            du_part = d_x * delta[part]
            if skip is not None:
                du_part += dy * skip
            du[part] = du_part
        return du, d_delta, dA, dB, dC, d_skip, dz, carry, None


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
                   block_size: int = 128,
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
        block_size (int): Tokens whose ``[T, B, D, S]`` states are held at
            once (forward and backward); the start state of every block is
            kept for the backward pass. Larger blocks mean fewer vectorised
            calls but buffers that fall out of cache.
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
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(
            f'block_size={block_size!r} must be a positive integer')
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
                             delta_softplus, initial_state, block_size)


def _scan_pytorch(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor,
                  D: Optional[Tensor], z: Optional[Tensor],
                  delta_bias: Optional[Tensor], delta_softplus: bool,
                  initial_state: Optional[Tensor],
                  block_size: int) -> Tuple[Tensor, Tensor]:
    """The blocked scan; arguments as :func:`selective_scan`. Runs in
    float32 (float64 if an input is float64)."""
    batch, L, dims = u.shape
    S = A.shape[1]
    out_dtype = u.dtype
    dtype = torch.float64 if torch.float64 in (
        u.dtype, delta.dtype, A.dtype, B.dtype, C.dtype) else torch.float32
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)
    if delta_softplus:
        delta = F.softplus(delta)
    h0 = u.new_zeros(batch, dims, S, dtype=dtype) \
        if initial_state is None else initial_state.to(dtype)

    def time_major(t: Tensor) -> Tensor:  # [B, L, *] -> [L, B, *]
        return t.to(dtype).transpose(0, 1).contiguous()

    y, state = _SelectiveScanFn.apply(
        time_major(u), time_major(delta), A.to(dtype), time_major(B),
        time_major(C), None if D is None else D.to(dtype),
        None if z is None else time_major(z), h0, block_size)
    y = y.transpose(0, 1)  # [B, L, D]
    return y.to(out_dtype), state.float()

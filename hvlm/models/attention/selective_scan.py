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
and inputs ``delta B u`` (``[T, B, S, D]``, ``D`` innermost; 1 MB at
``T = 16``, ``D = 1024``, ``S = 16``) are formed with a couple of
vectorised ops into buffers reused by every block, so they stay in a
core's L2 cache; the recurrence then runs as one in-place ``h_t += a_t
h_{t-1}`` per token on a ``[B, S, D]`` slice. That is the recurrence
itself, in the input's precision, so it is exact where the decays
underflow and needs no log-space rescaling. Only each block's start state
is kept (``[L / T, B, S, D]``, ``S / T`` of an ``[L, D]`` activation); the
backward pass (:class:`_SelectiveScanFn`) recomputes a block's states from
it and runs the adjoint recurrence ``g_t = dy_t C_t + exp(delta_{t+1} A)
g_{t+1}`` backwards, from which every input gradient is a reduction over
``D`` or ``S``. Autograd never sees the ``[L, D, S]`` intermediates, so
training keeps ``O(L D)`` activations.

Threads. The per-token update of one chain is ``B S D`` elements (16k at
``D = 1024``), not more than the 32k below which ATen runs an
elementwise op on one thread, and every token waits for the previous
one: the forward and the adjoint recurrences are one op per token on one
thread, and everything else is made of passes over whole blocks, which
ATen splits. A block may also be taken as ``G`` sub-blocks of ``sub``
tokens, each with its start state kept (see :class:`_ScanBuffers`): the
backward pass then recomputes the sub-blocks' states side by side, one
in-place update of ``[G, B, S, D]`` per token step, which ATen splits.
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


def _block_states(u: Tensor,
                  delta: Tensor,
                  A_t: Tensor,
                  B: Tensor,
                  h0: Tensor,
                  bufs: '_ScanBuffers',
                  delta_u: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Decays and states of one block, written into ``bufs``.

    The state is laid out ``[..., S, D]`` (``D`` innermost): the per-token
    update is the same either way, but every contraction over ``S`` then
    reads whole contiguous rows of ``D``, which is 2-3x faster than a
    reduction over a 16-wide innermost dimension.

    Args:
        u, delta (Tensor): ``[T, B, D]`` (time-major).
        A_t (Tensor): ``[S, D]`` (``A`` transposed).
        B (Tensor): ``[T, B, S]``.
        h0 (Tensor): ``[B, S, D]`` state before the block: one chain over
            its ``T`` tokens. Or ``[G, B, S, D]``, the state before each of
            its sub-blocks of ``bufs.sub`` tokens (the last may be short),
            whose chains then run side by side.
        bufs (_ScanBuffers): Work buffers of at least ``T`` tokens.
        delta_u (Tensor, optional): ``delta * u`` if already formed.

    Returns:
        tuple: ``exp(delta A)`` and every ``h_t``, both ``[T, B, S, D]``
        views of the buffers.
    """
    T = u.shape[0]
    decay, states = bufs.head(bufs.decay, T), bufs.head(bufs.states, T)
    torch.mul(delta.unsqueeze(-2), A_t, out=decay).exp_()
    if delta_u is None:
        delta_u = delta * u
    torch.mul(B.unsqueeze(-1), delta_u.unsqueeze(-2), out=states)
    if h0.dim() == 4:
        _sub_block_chains(T, h0, bufs)
        return decay, states
    h = h0
    for a_t, h_t in zip(bufs.decay_steps[:T], bufs.state_steps[:T]):
        h = h_t.addcmul_(a_t, h)  # h_t = a_t * h_{t-1} + x_t, in place
    return decay, states


def _sub_block_chains(T: int, starts: Tensor, bufs: '_ScanBuffers') -> None:
    """``h_t = a_t h_{t-1} + x_t`` in place in ``bufs.states`` for the first
    ``T`` tokens, taken as sub-blocks of ``bufs.sub`` tokens that start
    from ``starts [G, B, S, D]``: token step ``j`` of every sub-block in
    one op (the last sub-block may be shorter and drops out early)."""
    groups, sub = starts.shape[0], bufs.sub
    last = T - (groups - 1) * sub  # tokens in the last sub-block
    whole = groups == bufs.groups and last == sub
    prev = starts
    for j, (a_j, x_j) in enumerate(zip(bufs.decay_subs, bufs.state_subs)):
        if not whole:
            k = groups if j < last else groups - 1
            if k == 0:
                break
            a_j, x_j, prev = a_j[:k], x_j[:k], prev[:k]
        prev = x_j.addcmul_(a_j, prev)


def _contract_s(C: Tensor, hs: Tensor, out: Tensor) -> Tensor:
    """``out[t, b, d] = sum_s C[t, b, s] hs[t, b, s, d]``: a row vector
    times an ``[S, D]`` matrix per token (``out`` is ``[T, B, D]``)."""
    torch.matmul(C.unsqueeze(-2), hs, out=out.unsqueeze(-2))
    return out


def _contract_d(hs: Tensor, v: Tensor) -> Tensor:
    """``sum_d hs[t, b, s, d] v[t, b, d]`` -> ``[T, B, S]``. ``einsum``
    picks a faster kernel for this batched matrix-vector product than
    ``matmul`` does."""
    return torch.einsum('tbsd,tbd->tbs', hs, v)


class _ScanBuffers:
    """The ``[T, B, S, D]`` work buffers of one pass, allocated once and
    reused by every block so that they stay in cache.

    The views that the blocks step through (per token, per state index)
    are made here once: making them anew for every block cost more than a
    tenth of the scan's time, a block being some hundred small ops.

    ``sub`` (a divisor of ``T``; ``T`` if not given) is the length of the
    sub-blocks whose start states the forward pass keeps: the backward
    pass's buffers step through all of a block's sub-blocks at once (see
    :func:`_sub_block_chains`)."""

    def __init__(self, ref: Tensor, T: int, S: int, backward: bool,
                 sub: Optional[int] = None):
        batch, D = ref.shape[1], ref.shape[2]
        self.T, self.sub = T, sub or T
        if T % self.sub:
            raise ValueError(f'sub={sub} does not divide T={T}')
        self.groups = T // self.sub
        self.decay = ref.new_empty(T, batch, S, D)
        self.states = torch.empty_like(self.decay)
        self.decay_steps = self.decay.unbind(0)
        self.state_steps = self.states.unbind(0)
        self.grads = self.grad_steps = self.carry = self.dA = None
        if backward:
            # Token step j of every sub-block: [G, B, S, D] each.
            self.decay_subs, self.state_subs = (
                t.view(self.groups, self.sub, batch, S, D).unbind(1)
                for t in (self.decay, self.states))
            self.grads = torch.empty_like(self.decay)
            self.grad_steps = self.grads.unbind(0)
            self.carry = ref.new_empty(batch, S, D)
            # Every block adds its ``w delta`` here, and the sum over the
            # tokens is taken once, by :meth:`dA_t`: one pass per block
            # instead of a product and a reduction.
            self.dA = torch.zeros_like(self.decay)
            self.decay_rows = self.decay.unbind(-2)  # [T, B, D] each
            self.decay_tail, self.states_head = self.decay[1:], \
                self.states[:-1]
            self._A_t = self.A_rows = None

    def head(self, buf: Tensor, T: int) -> Tensor:
        """The first ``T`` tokens of a buffer (itself for a whole block)."""
        return buf if T == self.T else buf[:T]

    def rows(self, A_t: Tensor) -> Tuple[Tensor, ...]:
        """``A_t``'s rows, made once per pass."""
        if self._A_t is not A_t:
            self._A_t, self.A_rows = A_t, A_t.unbind(0)
        return self.A_rows

    def dA_t(self) -> Tensor:
        """The gradient of ``A_t [S, D]`` of all the blocks so far."""
        return self.dA.sum((0, 1))


def _scan_block_forward(u: Tensor,
                        delta: Tensor,
                        A_t: Tensor,
                        B: Tensor,
                        C: Tensor,
                        h0: Tensor,
                        bufs: _ScanBuffers,
                        y: Tensor,
                        delta_u: Optional[Tensor] = None,
                        sub_starts: Optional[Tensor] = None) -> Tensor:
    """One block forward: writes ``y [T, B, D]`` (no skip, no gate) and
    returns the last state ``[B, S, D]`` (a view of a buffer). The state
    before each sub-block of ``bufs.sub`` tokens after the first is copied
    into ``sub_starts [G - 1, B, S, D]`` if given."""
    _, hs = _block_states(u, delta, A_t, B, h0, bufs, delta_u)
    _contract_s(C, hs, y)
    if sub_starts is not None and sub_starts.shape[0]:
        sub = bufs.sub
        sub_starts.copy_(hs[sub - 1:hs.shape[0] - 1:sub])
    return hs[-1]


def _scan_block_backward(u: Tensor, delta: Tensor, A_t: Tensor, B: Tensor,
                         C: Tensor, h0: Tensor, dy: Tensor, carry: Tensor,
                         bufs: _ScanBuffers, y: Tensor, du: Tensor,
                         d_delta: Tensor, dB: Tensor, dC: Tensor,
                         delta_u: Optional[Tensor] = None) -> Tensor:
    """One block backward, from its start state ``h0`` (``[B, S, D]``, or
    ``[G, B, S, D]`` for each sub-block: see :func:`_block_states`) and
    ``dy = dLoss / dy [T, B, D]``. Recomputes the block's states, writes
    ``y`` (the forward output, needed by the gate's gradient) and the
    gradients ``du`` (scan part only), ``d_delta``, ``dB``, ``dC``; adds
    this block's part of ``dA`` to ``bufs`` (see
    :meth:`_ScanBuffers.dA_t`). ``carry`` is ``dLoss / dh`` at the block's
    end; returns it at the block's start (in ``bufs.carry``)."""
    if delta_u is None:
        delta_u = delta * u
    a, hs = _block_states(u, delta, A_t, B, h0, bufs, delta_u)
    if h0.dim() == 4:
        h0 = h0[0]
    T = a.shape[0]
    _contract_s(C, hs, y)
    dC.copy_(_contract_d(hs, dy))
    # Adjoint: g_t = dy_t C_t + a_{t+1} g_{t+1}, backwards in time, one
    # in-place multiply-add per token: the only op per token, the rest
    # are passes over the whole block, which ATen splits across threads.
    g = torch.mul(C.unsqueeze(-1), dy.unsqueeze(-2),
                  out=bufs.head(bufs.grads, T))  # [T, B, S, D]
    g_steps, a_steps = bufs.grad_steps, bufs.decay_steps
    g_steps[T - 1].add_(carry)
    for step in range(T - 1, 0, -1):
        g_steps[step - 1].addcmul_(a_steps[step], g_steps[step])
    # x_t = delta_t u_t B_t: reductions of g over S and over D.
    d_x = _contract_s(B, g, du)  # [T, B, D], written into du
    dB.copy_(_contract_d(g, delta_u))
    # a_t = exp(delta_t A): w_t = g_t * a_t * h_{t-1} is the gradient of
    # the log-decay delta_t A, formed in place of a (no longer needed);
    # a_0 g_0 is dLoss / dh0.
    w = a.mul_(g)
    carry = bufs.carry.copy_(a_steps[0])
    if T == bufs.T:
        bufs.decay_tail.mul_(bufs.states_head)
        w_rows = bufs.decay_rows
    else:
        w[1:].mul_(hs[:-1])
        w_rows = w.unbind(-2)
    a_steps[0].mul_(h0)
    # d_delta = sum_s A w is a product-sum over the S rows of w, one
    # multiply-add per row: no [T, B, S, D] product is written.
    A_rows = bufs.rows(A_t)
    torch.mul(w_rows[0], A_rows[0], out=d_delta)
    for w_s, A_s in zip(w_rows[1:], A_rows[1:]):
        d_delta.addcmul_(w_s, A_s)
    d_delta.addcmul_(d_x, u)
    bufs.head(bufs.dA, T).addcmul_(w, delta.unsqueeze(-2))
    du.mul_(delta)
    return carry


def _gate(y: Tensor, u: Tensor, skip: Optional[Tensor],
          z: Optional[Tensor]) -> Tensor:
    """``(y + skip u) * silu(z)`` (either part optional); new tensor."""
    if skip is not None:
        y = torch.addcmul(y, u, skip)
    return y * F.silu(z) if z is not None else y


class _SelectiveScanFn(torch.autograd.Function):
    """The scan over time-major ``u, delta, z [L, B, D]``, ``B, C [L, B,
    S]`` from ``h0 [B, S, D]``; returns ``(y + skip u) * silu(z)``
    ``[L, B, D]`` and the last state ``[B, S, D]``. Skip and gate are
    inside so that no ``[L, B, D]`` intermediate of theirs is kept for the
    backward pass either. See the module docstring."""

    @staticmethod
    def forward(ctx, u: Tensor, delta: Tensor, A: Tensor, B: Tensor,
                C: Tensor, skip: Optional[Tensor], z: Optional[Tensor],
                h0: Tensor, block_size: int):
        L = u.shape[0]
        T = max(1, min(block_size, L))
        A_t = A.t().contiguous()  # [S, D]
        bufs = _ScanBuffers(u, T, A.shape[1], backward=False)
        y = torch.empty_like(u)
        starts = u.new_empty((L + T - 1) // T, *h0.shape)
        h = h0
        for index, start in enumerate(range(0, L, T)):
            part = slice(start, start + T)
            starts[index] = h  # a copy: h is a view of a reused buffer
            h = _scan_block_forward(u[part], delta[part], A_t, B[part],
                                    C[part], starts[index], bufs, y[part])
        out = _gate(y, u, skip, z)
        ctx.save_for_backward(u, delta, A, B, C, skip, z, starts)
        ctx.block_size = T
        return out, h.clone()

    @staticmethod
    def backward(ctx, d_out: Optional[Tensor], dh_last: Optional[Tensor]):
        u, delta, A, B, C, skip, z, starts = ctx.saved_tensors
        T = ctx.block_size
        A_t = A.t().contiguous()
        bufs = _ScanBuffers(u, T, A.shape[1], backward=True)
        if d_out is None:
            d_out = torch.zeros_like(u)
        du, d_delta = torch.empty_like(u), torch.empty_like(delta)
        dB, dC = torch.empty_like(B), torch.empty_like(C)
        d_skip = None if skip is None else torch.zeros_like(skip)
        dz = None if z is None else torch.empty_like(z)
        y = u.new_empty(T, *u.shape[1:])
        carry = torch.zeros_like(starts[0]) if dh_last is None else \
            dh_last.to(u.dtype).clone()  # dLoss / dh at the block's end
        for index in reversed(range(starts.shape[0])):
            part = slice(index * T, index * T + T)
            dy = d_out[part]  # [t, B, D]
            if z is not None:  # out = pre * silu(z), pre = y + skip u
                sig = torch.sigmoid(z[part])
                dy = dy * z[part] * sig  # [t, B, D]
            y_part = y[:dy.shape[0]]
            carry = _scan_block_backward(
                u[part], delta[part], A_t, B[part], C[part], starts[index],
                dy, carry, bufs, y_part, du[part], d_delta[part], dB[part],
                dC[part])
            if z is not None:
                pre = _gate(y_part, u[part], skip, None)
                # silu'(z) = sig (1 + z (1 - sig))
                dz[part] = d_out[part] * pre * sig * (1 + z[part] * (1 - sig))
            if skip is not None:
                d_skip += (dy * u[part]).sum((0, 1))
                du[part].addcmul_(dy, skip)
        return du, d_delta, bufs.dA_t().t(), dB, dC, d_skip, dz, carry, None


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
                   block_size: int = 16,
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
            calls but buffers that fall out of cache (three ``[T, B, S,
            D]`` buffers in the backward pass).
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
    h0 = u.new_zeros(batch, S, dims, dtype=dtype) if initial_state is None \
        else initial_state.to(dtype).transpose(1, 2).contiguous()

    def time_major(t: Tensor) -> Tensor:  # [B, L, *] -> [L, B, *]
        return t.to(dtype).transpose(0, 1).contiguous()

    y, state = _SelectiveScanFn.apply(
        time_major(u), time_major(delta), A.to(dtype), time_major(B),
        time_major(C), None if D is None else D.to(dtype),
        None if z is None else time_major(z), h0, block_size)
    y = y.transpose(0, 1)  # [B, L, D]
    return y.to(out_dtype), state.transpose(1, 2).float()  # [B, D, S]

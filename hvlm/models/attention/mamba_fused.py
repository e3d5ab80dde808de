"""The inner part of a Mamba block, from the ``in_proj`` outputs to the
``out_proj`` output, as one autograd Function that works chunk by chunk.

Why. Composed from separate ops, training keeps one ``[L, D_inner]``
activation per op for the backward pass: the conv input and its ``silu``
output, the ``dt_proj`` output, ``softplus`` of it, the gated scan output
for ``out_proj``, besides the gate ``z``; and every elementwise op makes a
pass over ``[L, D_inner]`` in memory, forward and backward.
:func:`mamba_inner` keeps only what cannot be recomputed cheaply -- the
padded conv input, ``z``, the ``x_proj`` output (``[L, R + 2 S]``, small)
and the scan's start state of every block -- and recomputes the rest in the
backward pass, one chunk of tokens at a time. Every ``[chunk, D_inner]``
intermediate lives in a buffer that all chunks reuse (:class:`_Workspace`),
written by ops with ``out=`` or in place. The matmuls run on chunks of
up to :data:`CHUNK` tokens per thread, large enough for efficient GEMMs
(fewer at short sequences, where the buffers would dominate the peak
memory: see :func:`_chunk_size`); the scan runs on blocks of
``block_size`` tokens inside each chunk, several of them per step (see
:func:`_scan_block_size` and :mod:`.selective_scan`).

The computation is exactly the reference one (the same ops in float32,
only grouped differently, so results agree to rounding);
``tests/test_models/test_attention/test_mamba_layer.py`` checks outputs
and gradients against the unfused path and a float64 ``gradcheck``.
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .selective_scan import (_scan_block_backward, _scan_block_forward,
                             _ScanBuffers)

#: Most tokens per chunk and per thread for the matmuls and elementwise
#: work: ``[CHUNK, D_inner]`` float32 is 1 MB at ``D_inner = 1024``.
CHUNK = 256
#: Fewest tokens per chunk (unless the sequence is shorter), and the
#: sequence length is split into at least ``CHUNKS`` chunks up to
#: :data:`CHUNK` per thread: see :func:`_chunk_size`.
MIN_CHUNK = 32
CHUNKS = 16


def _chunk_size(L: int, T: int) -> int:
    """Tokens per chunk for a sequence of ``L`` with blocks of ``T``: whole
    blocks, at most ``L`` rounded up to a block and at most ``L /
    CHUNKS`` above :data:`MIN_CHUNK`, and :data:`CHUNK` per thread.

    Why not always the most: the backward pass holds some sixteen
    ``[chunk, D_inner]`` buffers (16 MB at :data:`CHUNK`), a fixed cost
    that at 1k tokens was as large as the layer's ``[L, D_inner]``
    activations and put its peak memory at 2.7x SDPA's. A chunk of ``L /
    16`` tokens keeps the buffers to about one activation; long sequences,
    where the larger GEMMs pay, still get whole chunks. Why per thread:
    ATen splits every op of a chunk across the threads, and each thread's
    part stays as large as one thread's whole op; measured at 16k tokens
    with two threads, chunks of 512 took 0.93x the time of chunks of 256.
    """
    most = CHUNK * torch.get_num_threads()
    target = min(most, max(MIN_CHUNK, L // CHUNKS), L)
    return T * max(1, target // T)


#: Most blocks of ``block_size`` tokens per step of the scan and per
#: thread: see :func:`_scan_block_size`.
SCAN_SUBS = 2


def _scan_block_size(chunk: int, sub: int) -> int:
    """Tokens per step of the scan in a chunk of ``chunk`` tokens: up to
    :data:`SCAN_SUBS` blocks of ``sub`` tokens (``block_size``, the
    distance between the kept start states) per thread, at most a quarter
    of the chunk.

    Why several blocks. A step of the scan is some fifty ops over ``[T,
    B, S, D_inner]`` besides the one in-place update per token; with
    longer steps there are fewer ops, each large enough for ATen to split
    across threads, and the backward pass recomputes the blocks' states
    side by side from their kept starts (see
    :func:`.selective_scan._sub_block_chains`), where a single block's
    per-token update is too small to be split. Two blocks of 16 per
    thread put a ``[32, 16, 1024]`` float32 share of each buffer, 2 MB,
    in each thread's core, the size of its L2 cache here. Measured at 16k
    tokens, forward and backward: with two threads, steps of 64 tokens
    took 0.8x the time of steps of 16; with one, steps of 32 took about
    the same (0.97x, within this machine's noise). Why at most a quarter of the chunk: the scan's four ``[T, S,
    D_inner]`` buffers then hold no more than the chunk's sixteen
    ``[chunk, D_inner]`` ones (``S = 16``), so short sequences, whose
    chunks are short, keep their peak memory (one block at 1k tokens).
    """
    most = SCAN_SUBS * torch.get_num_threads()
    return sub * max(1, min(most, chunk // (4 * sub)))


def _causal_conv(padded: Tensor, taps: Tensor, bias: Optional[Tensor],
                 out: Optional[Tensor] = None) -> Tensor:
    """``out[:, t] = bias + sum_k taps[k] * padded[:, t + k]``: ``K``
    multiply-adds over ``padded [B, K - 1 + L, D]``, no transposes to the
    ``[B, D, L]`` layout of ``F.conv1d``; into ``out`` if given.

    ``taps`` is the ``[D, K]`` kernel transposed to ``[K, D]``, contiguous
    (see :func:`_conv_taps`)."""
    K = taps.shape[0]
    L = padded.shape[1] - K + 1
    out = torch.mul(padded[:, K - 1:], taps[K - 1], out=out)
    if bias is not None:
        out.add_(bias)
    for tap in range(K - 1):
        out.addcmul_(padded[:, tap:tap + L], taps[tap])
    return out


def _conv_taps(weight: Tensor) -> Tensor:
    """The depthwise kernel ``[D, K]`` as contiguous rows ``[K, D]``.

    Why: a column ``weight[:, k]`` has stride ``K``, and an elementwise op
    whose broadcast operand is strided along the innermost dimension runs
    ATen's scalar loop instead of the vectorised one: measured 4.8x slower
    for a tap's multiply-add over ``[256, 1024]``."""
    return weight.t().contiguous()


def _time_major(t: Tensor) -> Tensor:
    """``[B, T, *] -> [T, B, *]``, contiguous (free when ``B = 1``)."""
    return t.transpose(0, 1).contiguous()


def _mm_into(a: Tensor, b: Tensor, out: Tensor) -> Tensor:
    """``out[B, n, M] = a[B, n, K] @ b[K, M]`` as one 2-D product, written
    in place when ``out`` is contiguous (a slice of ``[B, L, M]`` is when
    ``B = 1``); ``torch.matmul`` runs a 3-D input as a batched product of
    one, measured up to a quarter slower."""
    a2 = a.reshape(-1, a.shape[-1])
    if out.is_contiguous():
        torch.mm(a2, b, out=out.view(-1, out.shape[-1]))
    else:
        out.copy_(torch.mm(a2, b).view(out.shape))
    return out


class _Workspace:
    """Named ``[B, n, width]`` buffers for the per-chunk intermediates,
    allocated once per pass and reused by every chunk.

    Why: a fresh ``[chunk, D_inner]`` float32 tensor is 1 MB, above
    malloc's mmap threshold (64 KiB in ``benchmark_attention.py``'s
    subprocess), so every new one is mapped anew and first written through
    page faults; measured, an out-of-place elementwise op on one cost 4-6x
    its in-place version, and a backward chunk made some twenty of them.
    A buffer is flat and its first ``B n width`` elements are used, so a
    short last chunk is contiguous too.
    """

    def __init__(self, ref: Tensor, batch: int, chunk: int, width: int):
        self.ref, self.batch, self.chunk, self.width = ref, batch, chunk, width
        self.bufs = {}

    def __call__(self, name: str, n: int, time_major: bool = False) -> Tensor:
        buf = self.bufs.get(name)
        if buf is None:
            buf = self.bufs[name] = self.ref.new_empty(
                self.batch * self.chunk * self.width)
        shape = (n, self.batch) if time_major else (self.batch, n)
        return buf[:self.batch * n * self.width].view(*shape, self.width)


def _softplus_(t: Tensor) -> Tensor:
    """``F.softplus`` in place (the same kernel, no new tensor)."""
    return torch.ops.aten.softplus.out(t, 1, 20, out=t)


class _MambaInnerFn(torch.autograd.Function):
    """See :func:`mamba_inner` (same arguments, all tensors in one dtype,
    ``h0`` laid out ``[B, S, D_inner]``)."""

    @staticmethod
    def forward(ctx, padded: Tensor, z: Tensor, conv_w: Tensor,
                conv_b: Optional[Tensor], x_w: Tensor, dt_w: Tensor,
                dt_b: Tensor, A: Tensor, skip: Tensor, out_w: Tensor,
                size: Optional[Tensor], h0: Tensor, scale: float,
                block_size: int) -> Tuple[Tensor, Tensor]:
        batch, L, Di = z.shape
        K, S, R = conv_w.shape[1], A.shape[1], dt_w.shape[1]
        sub = max(1, min(block_size, L))
        chunk = _chunk_size(L, sub)
        T = _scan_block_size(chunk, sub)
        A_t = A.t().contiguous()  # [S, Di]
        taps = _conv_taps(conv_w)
        # No scaled copy of the weight at scale 1 (the causal layer).
        w_out_t = (out_w if scale == 1 else out_w * scale).t()
        x_dbl = z.new_empty(batch, L, R + 2 * S)
        out = z.new_empty(batch, L, out_w.shape[0])
        # [n, B, S, Di]: the state before every block of sub tokens.
        starts = z.new_empty((L + sub - 1) // sub, *h0.shape)
        bufs = _ScanBuffers(z.new_empty(1, batch, Di), T, S, backward=False,
                            sub=sub)
        ws = _Workspace(z, batch, chunk, Di)
        y = z.new_empty(chunk, batch, Di)  # scan output, time-major
        h, block = h0, 0
        for c0 in range(0, L, chunk):
            part = slice(c0, min(c0 + chunk, L))
            n = part.stop - c0
            u = F.silu(_causal_conv(padded[:, c0:part.stop + K - 1], taps,
                                    conv_b, out=ws('u', n)),
                       inplace=True)  # [B, n, Di]
            x_c = _mm_into(u, x_w.t(), x_dbl[:, part])  # [B, n, R + 2 S]
            dt_low, B, C = x_c.split([R, S, S], dim=-1)
            delta = _softplus_(torch.addmm(
                dt_b, dt_low.reshape(-1, R), dt_w.t(),
                out=ws('delta', n).view(-1, Di))).view(batch, n, Di)
            if size is not None:
                delta.mul_(size[:, part, None])
            u_t, delta_t = _time_major(u), _time_major(delta)
            B_t, C_t = _time_major(B), _time_major(C)
            delta_u = torch.mul(delta_t, u_t, out=ws('delta_u', n, True))
            for b0 in range(0, n, T):
                blk = slice(b0, min(b0 + T, n))
                subs = -(-(blk.stop - b0) // sub)
                starts[block] = h  # a copy: h is a view of a reused buffer
                h = _scan_block_forward(u_t[blk], delta_t[blk], A_t,
                                        B_t[blk], C_t[blk], starts[block],
                                        bufs, y[blk], delta_u[blk],
                                        starts[block + 1:block + subs])
                block += subs
            # (y + D u) silu(z), [B, n, Di], in delta_u's buffer: dead
            # after the scan.
            gated = torch.addcmul(y[:n].transpose(0, 1), u, skip,
                                  out=ws('delta_u', n))
            gated.mul_(torch.ops.aten.silu.out(z[:, part],
                                               out=ws('silu_z', n)))
            _mm_into(gated, w_out_t, out[:, part])
        ctx.save_for_backward(padded, z, conv_w, conv_b, x_w, dt_w, dt_b,
                              A, skip, out_w, size, x_dbl, starts)
        ctx.scale, ctx.sizes = scale, (sub, T, chunk)
        return out, h.clone()

    @staticmethod
    def backward(ctx, d_out: Optional[Tensor], dh_last: Optional[Tensor]):
        (padded, z, conv_w, conv_b, x_w, dt_w, dt_b, A, skip, out_w, size,
         x_dbl, starts) = ctx.saved_tensors
        scale, (sub, T, chunk) = ctx.scale, ctx.sizes
        batch, L, Di = z.shape
        K, S, R = conv_w.shape[1], A.shape[1], dt_w.shape[1]
        A_t = A.t().contiguous()
        taps = _conv_taps(conv_w)
        # A scaled copy is a weight-sized buffer held through the
        # backward pass: none at scale 1 (the causal layer).
        w_out = out_w if scale == 1 else out_w * scale
        if d_out is None:
            d_out = z.new_zeros(batch, L, out_w.shape[0])
        d_padded = torch.zeros_like(padded)
        dz = torch.empty_like(z)
        d_conv_b = None if conv_b is None else torch.zeros_like(conv_b)
        d_x_w, d_dt_w = torch.zeros_like(x_w), torch.zeros_like(dt_w)
        d_dt_b = torch.zeros_like(dt_b)
        # Products summed over the tokens (the conv weight's K taps, the
        # skip) accumulate per chunk position and are reduced at the end:
        # one pass per chunk instead of a product and a reduction.
        conv_acc = z.new_zeros(K, batch, chunk, Di)
        skip_acc = z.new_zeros(batch, chunk, Di)
        d_w_out = torch.zeros_like(out_w)
        d_size = None if size is None or not ctx.needs_input_grad[10] \
            else torch.empty_like(size)
        bufs = _ScanBuffers(z.new_empty(1, batch, Di), T, S, backward=True,
                            sub=sub)
        # The chunk's buffers are the fixed part of the peak memory: a
        # buffer is reused as soon as what it holds is dead (noted where),
        # and results go straight into the outputs where they can.
        ws = _Workspace(z, batch, chunk, Di)
        dB_t, dC_t = (z.new_empty(chunk, batch, S) for _ in range(2))
        carry = torch.zeros_like(starts[0]) if dh_last is None else \
            dh_last.to(z.dtype).clone()  # dLoss / dh at the block's end
        block = starts.shape[0]
        for c0 in reversed(range(0, L, chunk)):
            part = slice(c0, min(c0 + chunk, L))
            n = part.stop - c0
            window = padded[:, c0:part.stop + K - 1]  # [B, K - 1 + n, Di]
            conv = _causal_conv(window, taps, conv_b, out=ws('u', n))
            sig_conv = torch.sigmoid(conv, out=ws('sig_conv', n))
            u = conv.mul_(sig_conv)  # the conv is not needed again
            size_c = None if size is None else size[:, part]
            dt_low, B, C = x_dbl[:, part].split([R, S, S], dim=-1)
            dt_low = dt_low.reshape(-1, R)
            raw = torch.addmm(dt_b, dt_low, dt_w.t(),
                              out=ws('raw', n).view(-1, Di))
            step = torch.ops.aten.softplus.out(raw.view(batch, n, Di), 1, 20,
                                               out=ws('step', n))
            delta = step if size_c is None else torch.mul(
                step, size_c[..., None], out=ws('delta', n))
            z_c = z[:, part]
            sig_z = torch.sigmoid(z_c, out=ws('sig_z', n))
            silu_z = torch.mul(z_c, sig_z, out=ws('silu_z', n))
            # d_gated waits in dz for the factors of dz below.
            dz_c = dz[:, part]
            d_gated = _mm_into(d_out[:, part], w_out, dz_c)
            dy = torch.mul(d_gated, silu_z, out=ws('dy', n))  # d(y + D u)
            y, du_t, d_delta_t = (ws(name, n, True)
                                  for name in ('y', 'du_t', 'd_delta_t'))
            u_t, delta_t, dy_t = (_time_major(t) for t in (u, delta, dy))
            B_t, C_t = _time_major(B), _time_major(C)
            delta_u = torch.mul(delta_t, u_t, out=ws('delta_u', n, True))
            for b0 in reversed(range(0, n, T)):
                blk = slice(b0, min(b0 + T, n))
                subs = -(-(blk.stop - b0) // sub)
                block -= subs
                carry = _scan_block_backward(
                    u_t[blk], delta_t[blk], A_t, B_t[blk], C_t[blk],
                    starts[block:block + subs], dy_t[blk], carry, bufs,
                    y[blk], du_t[blk], d_delta_t[blk], dB_t[blk],
                    dC_t[blk], delta_u[blk])
            # delta_u is dead after the scan, and y once pre is formed.
            pre = torch.addcmul(y.transpose(0, 1), u, skip,
                                out=ws('delta_u', n))  # [B, n, Di]
            # out = (pre silu(z)) @ w_out^T. silu'(z) = sig (1 + z (1 -
            # sig)) is written sig + silu(z) (1 - sig): two passes fewer.
            factor = torch.mul(sig_z, -1, out=ws('y', n)).add_(1)
            dz_c.mul_(pre).mul_(factor.mul_(silu_z).add_(sig_z))
            # silu_z's last use: pre silu(z) in its place.
            d_w_out.addmm_(d_out[:, part].reshape(-1, out_w.shape[0]).t(),
                           silu_z.mul_(pre).view(-1, Di), alpha=scale)
            skip_acc[:, :n].addcmul_(dy, u)
            du = torch.addcmul(du_t.transpose(0, 1), dy, skip,
                               out=dy)  # dy's last use
            d_delta = d_delta_t.transpose(0, 1)  # [B, n, Di]
            # delta = softplus(raw) size; softplus' = sigmoid.
            if d_size is not None:
                d_size[:, part] = (d_delta * step).sum(-1)
            if size_c is not None:
                d_delta.mul_(size_c[..., None])
            d_raw = raw.sigmoid_().view(batch, n, Di).mul_(d_delta)
            d_raw = d_raw.view(-1, Di)
            d_dt_b += d_raw.sum(0)
            d_dt_w.addmm_(d_raw.t(), dt_low)
            d_x_dbl = torch.cat([d_raw @ dt_w, dB_t[:n].transpose(0, 1)
                                 .reshape(-1, S), dC_t[:n].transpose(0, 1)
                                 .reshape(-1, S)], -1)  # [B n, R + 2 S]
            d_x_w.addmm_(d_x_dbl.t(), u.view(-1, Di))
            du.view(-1, Di).addmm_(d_x_dbl, x_w)
            # u = silu(conv); silu' = sig (1 + conv (1 - sig)) = sig + u (1
            # - sig).
            factor = torch.mul(sig_conv, -1, out=factor).add_(1)
            d_c = du.mul_(factor.mul_(u).add_(sig_conv))
            if d_conv_b is not None:
                d_conv_b += d_c.sum((0, 1))
            d_window = d_padded[:, c0:part.stop + K - 1]
            for tap in range(K):
                d_window[:, tap:tap + n].addcmul_(d_c, taps[tap])
                conv_acc[tap, :, :n].addcmul_(d_c, window[:, tap:tap + n])
        # The sums over the tokens of the accumulators, once.
        d_conv_w = conv_acc.sum((1, 2)).t().contiguous()
        d_skip = skip_acc.sum((0, 1))
        return (d_padded, dz, d_conv_w, d_conv_b, d_x_w, d_dt_w, d_dt_b,
                bufs.dA_t().t(), d_skip, d_w_out, d_size, carry, None, None)


def mamba_inner(padded: Tensor,
                z: Tensor,
                conv_weight: Tensor,
                conv_bias: Optional[Tensor],
                x_proj_weight: Tensor,
                dt_proj_weight: Tensor,
                dt_proj_bias: Tensor,
                A: Tensor,
                D: Tensor,
                out_proj_weight: Tensor,
                size: Optional[Tensor] = None,
                initial_state: Optional[Tensor] = None,
                scale: float = 1.,
                block_size: int = 16) -> Tuple[Tensor, Tensor]:
    """Mamba's inner computation, fused; ``out_proj``'s bias is not applied.

    With ``u = silu(causal_conv(x))``, ``dt, B, C = split(x_proj(u))``,
    ``delta = softplus(dt_proj(dt)) * size`` and the selective scan ``y``
    of ``u`` (see :func:`.selective_scan`), the result is ``scale *
    out_proj((y + D u) * silu(z))``.

    Args:
        padded (Tensor): ``[B, K - 1 + L, D_inner]``, the conv input ``x``
            after the ``K - 1`` previous inputs (zeros at the start).
        z (Tensor): ``[B, L, D_inner]`` gate.
        conv_weight (Tensor): ``[D_inner, K]`` depthwise conv kernel.
        conv_bias (Tensor, optional): ``[D_inner]``.
        x_proj_weight (Tensor): ``[R + 2 S, D_inner]``.
        dt_proj_weight, dt_proj_bias (Tensor): ``[D_inner, R]``,
            ``[D_inner]``.
        A (Tensor): ``[D_inner, S]``, negative.
        D (Tensor): ``[D_inner]`` skip.
        out_proj_weight (Tensor): ``[C, D_inner]``.
        size (Tensor, optional): ``[B, L]`` multiplies ``delta``.
        initial_state (Tensor, optional): ``[B, D_inner, S]`` SSM state.
        scale (float): Multiplies the output (and ``out_proj``'s gradient).
        block_size (int): Tokens per block of the scan.

    Returns:
        tuple: ``[B, L, C]`` in ``z``'s dtype and the last SSM state
        ``[B, D_inner, S]`` in float32.
    """
    batch, L, Di = z.shape
    S = A.shape[1]
    if not isinstance(block_size, int) or block_size < 1:
        raise ValueError(
            f'block_size={block_size!r} must be a positive integer')
    dtype = torch.float64 if torch.float64 in (
        padded.dtype, z.dtype, x_proj_weight.dtype, A.dtype) \
        else torch.float32
    h0 = z.new_zeros(batch, S, Di, dtype=dtype) if initial_state is None \
        else initial_state.to(dtype).transpose(1, 2).contiguous()
    cast = (lambda t: None if t is None else t.to(dtype))
    with torch.autocast(device_type=z.device.type, enabled=False):
        out, state = _MambaInnerFn.apply(
            cast(padded), cast(z), cast(conv_weight), cast(conv_bias),
            cast(x_proj_weight), cast(dt_proj_weight), cast(dt_proj_bias),
            cast(A), cast(D), cast(out_proj_weight), cast(size), h0,
            float(scale), block_size)
    return out.to(z.dtype), state.transpose(1, 2).float()

"""FAVOR+ attention (Performer): softmax attention in linear time through
positive orthogonal random features."""
import math
from typing import Iterator, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .feature_maps import orthogonal_gaussian_matrix
from .full_attention import FullAttention

# Added to every feature after exp() (as in performer-pytorch and
# :func:`~.feature_maps.positive_random_features`, where m^-1/2 multiplies
# both terms and cancels in the normalisation).
_EPS = 1e-4
# Elements of one chunk's [B, h, chunk, m] features (4 MiB in float32, 512
# tokens at 8 heads and m = 256): large enough for the matmuls to run at
# full speed, small next to the [B, N, C] activations at the lengths where
# memory matters; larger chunks measured no faster.
_WORKSPACE_NUMEL = 1 << 20


class _Workspace:
    """Named buffers reused by every chunk of one pass.

    Each fresh tensor above malloc's mmap threshold costs a page fault per
    4 KiB when first written; per chunk that is as much time as the
    elementwise work on it. Buffers taken from here are allocated once and
    returned as contiguous views of the requested shape.
    """

    def __init__(self, like: Tensor, dtype: torch.dtype) -> None:
        self.like, self.dtype = like, dtype
        self.buffers = {}

    def get(self, name: str, shape: Tuple[int, ...]) -> Tensor:
        numel = math.prod(shape)
        buf = self.buffers.get(name)
        if buf is None or buf.numel() < numel:
            buf = self.buffers[name] = self.like.new_empty(
                numel, dtype=self.dtype)
        return buf[:numel].view(shape)


def _logits(x: Tensor, weight: Tensor, ws: _Workspace,
            name: str = 'logits') -> Tensor:
    """``x @ weight^T`` (``[B, h, c, m]``) written into ``ws``; ``x`` is
    first gathered into a buffer when strided (a chunk of ``qkv``), which
    the matmul would otherwise copy into a fresh tensor."""
    if not x.is_contiguous():
        x = ws.get('x', x.shape).copy_(x)
    return torch.matmul(x, weight.T,
                        out=ws.get(name, x.shape[:-1] + weight.shape[:1]))


def _half_sq_norm(x: Tensor, half_scale: float) -> Tensor:
    """``|x|^2 / (2 sqrt(d))``: the ``|x'|^2 / 2`` of ``x' = d^-1/4 x``."""
    # A reduction: no [.., c, d] temporary.
    return torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_().mul_(
        half_scale)  # [.., c, 1]


def _query_exps(q: Tensor, weight: Tensor, half_scale: float,
                ws: _Workspace) -> Tuple[Tensor, Tensor]:
    """``exp(z - |q'|^2/2 - max_j z)`` of queries, ``[B, h, c, m]``, in
    ``ws``, and the subtracted offset ``[B, h, c, 1]``; the per-query
    maximum cancels in the normalisation."""
    logits = _logits(q, weight, ws)
    offset = _half_sq_norm(q, half_scale).add_(
        logits.amax(dim=-1, keepdim=True))
    return logits.sub_(offset).exp_(), offset


def _append(x: Tensor, column, out: Tensor) -> Tensor:
    """``[x, column]`` along the last axis, written into ``out``
    (``[.., c, d + 1]``)."""
    out[..., :-1] = x
    out[..., -1:] = column
    return out


def _with_ones(v: Tensor, w: Optional[Tensor], ws: _Workspace) -> Tensor:
    """``[v, 1] * w`` (``[B, h, c, d + 1]``): the ones column makes the
    normaliser the last column of every product with the features."""
    v1 = _append(v, 1., ws.get('v1', v.shape[:-1] + (v.shape[-1] + 1, )))
    return v1 if w is None else v1.mul_(w)


def _shifted_exps(x: Tensor, offset: Tensor, weight_ones: Tensor,
                  ws: _Workspace) -> Tensor:
    """``exp(x W^T - offset)`` (``[B, h, c, m]``) in ``ws`` from one
    matmul: ``[x, -offset] @ weight_ones^T`` with ``weight_ones = [W, 1]``.
    The backward pass knows every offset from the forward, so it needs no
    separate subtraction, norm or maximum over the ``[c, m]`` logits."""
    x1 = _append(x, offset.neg(),
                 ws.get('x', x.shape[:-1] + (x.shape[-1] + 1, )))
    return _logits(x1, weight_ones, ws).exp_()


def _add_at_b(acc: Tensor, a: Tensor, b: Tensor) -> None:
    """``acc += a^T @ b`` in place for ``[B, h, ., .]`` tensors (no
    temporary for the product)."""
    B, h = a.shape[:2]
    acc.view(B * h, *acc.shape[2:]).baddbmm_(
        a.reshape(B * h, *a.shape[2:]).transpose(1, 2),
        b.reshape(B * h, *b.shape[2:]))


def _grad_input(grad_logits: Tensor, x: Tensor, weight_ones: Tensor,
                half_scale: float, ws: _Workspace) -> Tensor:
    """Gradient of ``x`` ``[B, h, c, d]`` from that of the logits of
    ``exp(x W^T - |x|^2 half_scale - s)``, ``grad_logits [B, h, c, m]``:
    ``x W^T`` and the norm term each contribute, the shift ``s`` nothing.
    ``weight_ones = [W, 1]`` gives ``grad_logits W`` and the row sums
    (the norm term's factor) from one matmul."""
    d = x.shape[-1]
    both = torch.matmul(grad_logits, weight_ones,
                        out=ws.get('both', x.shape[:-1] + (d + 1, )))
    return torch.addcmul(both[..., :d], both[..., d:], x,
                         value=-2 * half_scale,
                         out=ws.get('grad_x', x.shape))


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float32 for float32 and lower precisions (features go through
    exp()), float64 for float64 (gradcheck)."""
    return torch.promote_types(x.dtype, torch.float32)


def _key_chunks(qkv: Tensor, mem_k: Optional[Tensor],
                mem_v: Optional[Tensor], key_weight: Optional[Tensor],
                chunk: int) -> Iterator[tuple]:
    """Chunks of the keys ``[memory; tokens]``: ``k, v`` in the compute
    dtype (see :func:`_compute_dtype`)
    (``[B, h, c, d]``), the key weight ``[B, h or 1, c, 1]`` (or None), and
    where they are: ``(is_memory, start, stop, offset)`` with ``offset``
    the position of the segment among all keys."""
    segments = []
    if mem_k is not None:
        segments.append((True, mem_k, mem_v, 0))
    segments.append((False, qkv[:, :, 1].transpose(1, 2),
                     qkv[:, :, 2].transpose(1, 2),
                     0 if mem_k is None else mem_k.shape[2]))
    dtype = _compute_dtype(qkv)
    for is_memory, keys, values, offset in segments:
        for start in range(0, keys.shape[2], chunk):
            stop = min(start + chunk, keys.shape[2])
            w = None if key_weight is None else \
                key_weight[:, :, offset + start:offset + stop, None].to(dtype)
            yield (keys[:, :, start:stop].to(dtype),
                   values[:, :, start:stop].to(dtype), w,
                   (is_memory, start, stop, offset))


class _FavorAttention(torch.autograd.Function):
    """FAVOR+ attention ``D^-1 phi(Q) (phi(K)^T [V, 1])`` over chunks of
    tokens, keeping no ``[.., N, m]`` feature map for backward.

    Autograd of the plain formulation saves both feature maps (``m / d``
    times the size of ``q`` and ``k``: 4x each at the default ``m = 4d``)
    and allocates more of that size in backward. Here features exist for
    ``chunk`` tokens at a time, in one reused workspace: the forward keeps
    the ``[m, d + 1]`` context, the normaliser and the output (which the
    output projection saves anyway), and the backward recomputes each
    chunk's features from ``q`` or ``k`` (one small matmul, with offsets
    saved by the forward) while it forms the gradients. Reusing the
    buffers of a :class:`_Workspace` also spares the page faults that every
    fresh large tensor costs.

    The numerics are those of
    :func:`~.feature_maps.positive_random_features` followed by
    :func:`~.feature_maps.normalised_linear_attention`. The key stabiliser,
    the maximum logit over all keys and features of a head, is found on the
    fly: the context accumulated so far is rescaled when a chunk raises the
    maximum (as in online softmax), which never overflows and equals the
    two-pass result up to rounding. ``m ** -0.5`` scales numerator and
    normaliser alike and is left out.

    Inputs: ``qkv [B, N, 3, h, d]``, the fused projection in any float
    dtype (its gradient comes back as one buffer: no ``stack`` of three
    gradients); memory keys and values ``[B, h, M, d]`` or None (before the
    tokens' keys); the ``[m, d]`` projection (no gradient); the key weight
    ``[B, h or 1, M + N]`` or None (token sizes times the DropKey mask); the
    chunk length. Output: ``[B, N, h * d]`` in float32.
    """

    @staticmethod
    def forward(ctx, qkv: Tensor, mem_k: Optional[Tensor],
                mem_v: Optional[Tensor], projection: Tensor,
                key_weight: Optional[Tensor], chunk: int) -> Tensor:
        B, N, _, h, d = qkv.shape
        m = projection.shape[0]
        # d^-1/4 on both sides goes into the projection; a copy, so a redraw
        # in place before the backward cannot change what is saved.
        dtype = _compute_dtype(qkv)
        weight = projection.to(dtype) * d**-0.25  # [m, d]
        half_scale = d**-0.5 / 2
        ws = _Workspace(qkv, dtype)

        # context = sum_n w_n (exp(z_n - |k_n'|^2/2 - s) + eps) [v_n, 1],
        # s the running maximum of the key logits z.
        context = qkv.new_zeros(B, h, m, d + 1, dtype=dtype)
        total = qkv.new_zeros(B, h, 1, d + 1, dtype=dtype)
        shift = qkv.new_full((B, h, 1, 1), -math.inf, dtype=dtype)
        num_keys = N + (0 if mem_k is None else mem_k.shape[2])
        key_offset = qkv.new_empty(B, h, num_keys, dtype=dtype)
        for k, v, w, where in _key_chunks(qkv, mem_k, mem_v, key_weight,
                                          chunk):
            logits = _logits(k, weight, ws)  # [B, h, c, m]
            new_shift = torch.maximum(
                shift, logits.amax(dim=(-1, -2), keepdim=True))
            # exp(-inf) = 0 on the first chunk; logits are finite, so no
            # inf - inf.
            context.mul_((shift - new_shift).exp_())
            shift = new_shift
            norm = _half_sq_norm(k, half_scale)  # [B, h, c, 1]
            key_offset[:, :, where[3] + where[1]:where[3] + where[2]] = \
                norm[..., 0]
            exps = logits.sub_(norm.add_(shift)).exp_()
            vw = _with_ones(v, w, ws)  # [B, h, c, d + 1]
            _add_at_b(context, exps, vw)
            total.add_(vw.sum(-2, keepdim=True))
        context.add_(total, alpha=_EPS)  # [B, h, m, d + 1]
        key_offset.add_(shift[..., 0])  # [B, h, M + N]

        out = qkv.new_empty(B, N, h, d, dtype=dtype)
        denom = qkv.new_empty(B, h, N, dtype=dtype)
        query_offset = qkv.new_empty(B, h, N, dtype=dtype)
        context_sum = context.sum(-2, keepdim=True) * _EPS  # eps features
        for start in range(0, N, chunk):
            stop = min(start + chunk, N)
            q = qkv[:, start:stop, 0].transpose(1, 2).to(dtype)  # [B,h,c,d]
            exps, offset = _query_exps(q, weight, half_scale, ws)
            query_offset[:, :, start:stop] = offset[..., 0]
            num = torch.matmul(exps, context, out=ws.get(
                'num', exps.shape[:-1] + (d + 1, ))).add_(context_sum)
            denom[:, :, start:stop] = num[..., d]
            torch.div(num[..., :d], num[..., d:],
                      out=out[:, start:stop].transpose(1, 2))
        out = out.view(B, N, h * d)
        # The offsets let the backward recompute features with one matmul
        # each (see _shifted_exps); they are [B, h, N], like denom.
        ctx.save_for_backward(qkv, mem_k, mem_v, key_weight, weight,
                              context, out, denom, query_offset, key_offset)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (qkv, mem_k, mem_v, key_weight, weight, context, out, denom,
         query_offset, key_offset) = ctx.saved_tensors
        chunk = ctx.chunk
        B, N, _, h, d = qkv.shape
        m, dtype = weight.shape[0], weight.dtype
        half_scale = d**-0.5 / 2
        # [W, 1]: logits minus an offset, or gradients and their row sums,
        # from one matmul.
        weight_ones = torch.cat([weight, weight.new_ones(m, 1)], -1)
        with torch.autocast(device_type=qkv.device.type, enabled=False):
            grad_out = grad_out.to(dtype).reshape(B, N, h, d)
            out = out.view(B, N, h, d)
            ws = _Workspace(qkv, dtype)
            grad_qkv = torch.empty_like(qkv)

            # Queries; their sweep also gives the context's gradient.
            grad_context = torch.zeros_like(context)  # [B, h, m, d + 1]
            for start in range(0, N, chunk):
                stop = min(start + chunk, N)
                q = qkv[:, start:stop, 0].transpose(1, 2).to(dtype)
                exps = _shifted_exps(q, query_offset[:, :, start:stop, None],
                                     weight_ones, ws)
                g = grad_out[:, start:stop].transpose(1, 2)  # [B, h, c, d]
                o = out[:, start:stop].transpose(1, 2)
                # out = num[:d] / num[d], so d num = [g, -g . out] / num[d].
                grad_num = _append(
                    g,
                    torch.mul(g, o, out=ws.get('g_o', g.shape)).sum(
                        -1, keepdim=True).neg_(),
                    ws.get('grad_num', g.shape[:-1] + (d + 1, ))).div_(
                        denom[:, :, start:stop, None])  # [B, h, c, d + 1]
                # num = (exps + eps) @ context.
                _add_at_b(grad_context, exps, grad_num)
                grad_context.add_(grad_num.sum(-2, keepdim=True),
                                  alpha=_EPS)
                grad_exps = torch.matmul(
                    grad_num, context.transpose(-1, -2),
                    out=ws.get('grad', exps.shape))  # [B, h, c, m]
                grad_q = _grad_input(
                    grad_exps.mul_(exps), q, weight_ones, half_scale, ws)
                grad_qkv[:, start:stop, 0] = grad_q.transpose(1, 2)

            # Keys and values: context = sum_n w_n (exps_n + eps) [v_n, 1].
            grad_mem_k = None if mem_k is None else torch.empty_like(mem_k)
            grad_mem_v = None if mem_v is None else torch.empty_like(mem_v)
            grad_key_weight = None
            if key_weight is not None and ctx.needs_input_grad[4]:
                grad_key_weight = qkv.new_empty(
                    B, h, key_weight.shape[2], dtype=dtype)
            grad_context_sum = grad_context.sum(-2, keepdim=True)  # eps part
            for k, v, w, where in _key_chunks(qkv, mem_k, mem_v,
                                               key_weight, chunk):
                is_memory, start, stop, offset = where
                keys = slice(offset + start, offset + stop)
                exps = _shifted_exps(k, key_offset[:, :, keys, None],
                                     weight_ones, ws)
                # d feats = [v, 1] d context^T (times w, applied below).
                grad_exps = torch.matmul(
                    _with_ones(v, None, ws), grad_context.transpose(-1, -2),
                    out=ws.get('grad', exps.shape))  # [B, h, c, m]
                # d v = w (exps + eps) d context[:, :d].
                grad_v = torch.matmul(
                    exps, grad_context[..., :d],
                    out=ws.get('grad_v', v.shape)).add_(
                        grad_context_sum[..., :d], alpha=_EPS)
                if grad_key_weight is not None:
                    # d w = sum_j (exps + eps)_j d feats_j.
                    grad_key_weight[:, :, keys] = (
                        (exps * grad_exps).sum(-1) +
                        _EPS * grad_exps.sum(-1))
                grad_logits = grad_exps.mul_(exps)
                if w is not None:
                    grad_v.mul_(w)
                    grad_logits.mul_(w)
                grad_k = _grad_input(grad_logits, k, weight_ones, half_scale,
                                     ws)
                if is_memory:
                    grad_mem_k[:, :, start:stop] = grad_k
                    grad_mem_v[:, :, start:stop] = grad_v
                else:
                    grad_qkv[:, start:stop, 1] = grad_k.transpose(1, 2)
                    grad_qkv[:, start:stop, 2] = grad_v.transpose(1, 2)
        if grad_key_weight is not None and key_weight.shape[1] == 1:
            grad_key_weight = grad_key_weight.sum(1, keepdim=True)
        return grad_qkv, grad_mem_k, grad_mem_v, None, grad_key_weight, None


def favor_attention(qkv: Tensor,
                    projection: Tensor,
                    mem_k: Optional[Tensor] = None,
                    mem_v: Optional[Tensor] = None,
                    key_weight: Optional[Tensor] = None,
                    chunk_size: Optional[int] = None) -> Tensor:
    """FAVOR+ attention of fused ``qkv`` in memory linear in ``N`` with a
    small constant: no ``[N, m]`` feature map is kept for backward.

    Equals :func:`~.feature_maps.positive_random_features` of queries and
    keys (keys weighted by ``key_weight``) followed by
    :func:`~.feature_maps.normalised_linear_attention`, in values and
    gradients, up to rounding.

    Args:
        qkv (Tensor): ``[B, N, 3, h, d]`` queries, keys and values.
        projection (Tensor): ``[m, d]`` random projection.
        mem_k, mem_v (Tensor, optional): ``[B, h, M, d]`` extra keys and
            values, before the tokens'.
        key_weight (Tensor, optional): ``[B, h or 1, M + N]`` multiplies
            each key's features (proportional attention, DropKey).
        chunk_size (int, optional): Tokens per chunk; by default a
            ``[B, h, chunk, m]`` workspace holds about 1M elements.

    Returns:
        Tensor: ``[B, N, h * d]`` in float32.
    """
    B, N, three, h, d = qkv.shape
    if three != 3 or projection.shape[1] != d:
        raise ValueError(f'qkv {tuple(qkv.shape)} is not [B, N, 3, h, d] '
                         f'with d = projection.shape[1] = '
                         f'{projection.shape[1]}')
    if (mem_k is None) != (mem_v is None):
        raise ValueError('mem_k and mem_v must be given together')
    if chunk_size is None:
        chunk_size = _WORKSPACE_NUMEL // (B * h * projection.shape[0])
    chunk_size = max(1, min(int(chunk_size), N))
    with torch.autocast(device_type=qkv.device.type, enabled=False):
        return _FavorAttention.apply(qkv, mem_k, mem_v, projection.detach(),
                                     key_weight, chunk_size)


@ATTENTIONS.register_module()
class PerformerAttention(FullAttention):
    """Softmax attention estimated with FAVOR+ (Choromanski et al.,
    "Rethinking Attention with Performers", ICLR 2021).

    ``exp(q . k / sqrt(d))`` is written as the expectation of
    ``phi(q) . phi(k)`` over random projections (see
    :func:`positive_random_features`); with ``m = nb_features`` samples the
    attention becomes ``D^-1 phi(Q) (phi(K)^T V)``: ``O(N m d)`` time and
    ``O(N m)`` memory instead of ``O(N^2)``. The estimate is unbiased and
    its error shrinks as ``m`` grows; ``m`` of a few ``d log d`` is the
    paper's recommendation. Training keeps less still: features exist only
    for a chunk of tokens at a time and are recomputed in backward (see
    :func:`favor_attention`), so activations are those of ``q, k, v`` and
    the output, as for full attention with a fused kernel.

    The projection is a buffer (saved in checkpoints, so evaluation is
    reproducible). During training it is redrawn every ``redraw_interval``
    forward passes, which the paper found to help training: the model does
    not overfit one draw of features. Redraws use torch's global generator,
    so ranks seeded alike (mmengine's default) draw alike.

    Proportional attention is exact here: a key standing for ``s`` tubelets
    gets its features multiplied by ``s``, which is what ``s`` identical
    keys contribute to both numerator and normaliser.

    ``attn_drop`` has no attention matrix to act on; it drops whole keys
    instead (DropKey, Li et al., CVPR 2023): each key's features are zeroed
    with that probability, per head, before the normalisation, so the kept
    keys' weights are renormalised as in a softmax over the kept keys.

    Parameters are those of :class:`FullAttention` (``qkv``, ``proj``), so a
    checkpoint trained with full attention loads and can be fine-tuned.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias of the qkv projection.
        attn_drop (float): Probability of dropping a key (DropKey).
        proj_drop (float): Dropout after the output projection.
        nb_features (int): Random features ``m`` per head.
        redraw_interval (int, optional): Redraw the projection every this
            many training forward passes; ``None`` or 0 never redraws.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 nb_features: int = 256,
                 redraw_interval: Optional[int] = 1000) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if nb_features <= 0:
            raise ValueError(
                f'nb_features={nb_features} must be a positive integer')
        if redraw_interval is not None and redraw_interval < 0:
            raise ValueError(f'redraw_interval={redraw_interval} must be '
                             'None, 0 (never) or a positive integer')
        self.nb_features = nb_features
        self.redraw_interval = redraw_interval or 0
        self.register_buffer(
            'projection',
            orthogonal_gaussian_matrix(nb_features, self.head_dims))
        self.register_buffer(
            'calls_since_redraw', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def redraw_projection(self) -> None:
        """Draw a new orthogonal random projection in place."""
        self.projection.copy_(
            orthogonal_gaussian_matrix(self.nb_features, self.head_dims))
        self.calls_since_redraw.zero_()

    def _maybe_redraw(self) -> None:
        if not (self.training and self.redraw_interval):
            return
        if int(self.calls_since_redraw) >= self.redraw_interval:
            self.redraw_projection()
        self.calls_since_redraw += 1

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)``; not needed.
            size (Tensor, optional): ``[B, N]`` tubelets per token.
            memory (Tensor, optional): ``[B, M, C]`` extra keys/values.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        if C != self.embed_dims:
            raise ValueError(f'x has {C} channels, expected '
                             f'embed_dims={self.embed_dims}')
        if size is not None and tuple(size.shape) != (B, N):
            raise ValueError(f'size has shape {tuple(size.shape)}, '
                             f'expected [B, N] = [{B}, {N}]')
        self._maybe_redraw()
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads,
                                  self.head_dims)  # [B, N, 3, h, d]
        mem_k = mem_v = None
        if memory is not None:
            if (memory.dim() != 3 or memory.shape[0] != B
                    or memory.shape[2] != C):
                raise ValueError(f'memory has shape {tuple(memory.shape)}, '
                                 f'expected [B={B}, M, C={C}]')
            mem_k, mem_v = self._key_value_of(memory)  # [B, h, M, d]
            if size is not None:  # memory entries count 1
                size = F.pad(size, (memory.shape[1], 0), value=1.)
        key_weight = None if size is None else \
            size.float()[:, None, :]  # [B, 1, M + N]
        if self.training and self.attn_drop > 0:
            keep = torch.rand(
                B, self.num_heads, N + (0 if memory is None else
                                        memory.shape[1]),
                device=x.device) >= self.attn_drop  # [B, h, M + N]
            key_weight = keep.float() if key_weight is None else \
                key_weight * keep
        # Features go through exp(): bf16/fp16 would round them to 2-3
        # digits, so the attention always computes in float32 (chunk by
        # chunk; the bf16 qkv is what it keeps).
        out = favor_attention(qkv, self.projection, mem_k, mem_v,
                              key_weight)  # [B, N, C] float32
        return self.proj_drop(self.proj(out.to(x.dtype)))

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, nb_features={self.nb_features}, '
                f'redraw_interval={self.redraw_interval}')

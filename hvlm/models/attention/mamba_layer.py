"""Mamba as a token mixer: a selective state-space layer in place of
attention, linear in the number of tokens."""
import math
from typing import NamedTuple, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from . import selective_scan as _scan_module
from .mamba_fused import _causal_conv, _conv_taps, mamba_inner
from .selective_scan import selective_scan


class MambaState(NamedTuple):
    """What one direction of :class:`MambaLayer` carries from a clip to the
    next: the last ``d_conv - 1`` conv inputs and the SSM state."""
    conv: Tensor  # [B, D_inner, d_conv - 1]
    ssm: Tensor  # [B, D_inner, d_state], float32


class _CausalConvSiLU(torch.autograd.Function):
    """``silu`` of Mamba's causal depthwise conv, in the token-major layout.

    ``padded [B, K - 1 + L, D]`` holds the ``K - 1`` previous inputs first,
    ``weight`` is ``[D, K]``. No transposes to the ``[B, D, L]`` layout of
    ``F.conv1d``; only ``padded`` is kept for the backward pass (the conv is
    recomputed there for ``silu'``), and every tap's input gradient goes
    into one buffer (autograd through slices would allocate and zero a
    full-size gradient per tap)."""

    @staticmethod
    def forward(ctx, padded: Tensor, weight: Tensor,
                bias: Optional[Tensor]) -> Tensor:
        ctx.save_for_backward(padded, weight, bias)
        return F.silu(_causal_conv(padded, _conv_taps(weight), bias))

    @staticmethod
    def backward(ctx, grad: Tensor):
        padded, weight, bias = ctx.saved_tensors
        K = weight.shape[1]
        L = padded.shape[1] - K + 1
        taps = _conv_taps(weight)  # [K, D]
        conv = _causal_conv(padded, taps, bias)  # [B, L, D]
        sig = torch.sigmoid(conv)
        # silu'(c) = sig (1 + c (1 - sig)), formed in place in conv.
        grad = conv.mul_(1 - sig).add_(1).mul_(sig).mul_(grad)
        d_padded = torch.zeros_like(padded)
        d_weight = torch.empty_like(weight)
        for tap in range(K):
            d_padded[:, tap:tap + L].addcmul_(grad, taps[tap])
            d_weight[:, tap] = (grad * padded[:, tap:tap + L]).sum((0, 1))
        d_bias = None if bias is None else grad.sum((0, 1))
        return d_padded, d_weight, d_bias


def _init_dt_proj(dt_proj: nn.Linear, dt_rank: int, dt_min: float,
                  dt_max: float, dt_init_floor: float,
                  dt_scale: float) -> None:
    """Mamba's initialisation of the step projection: the weight keeps the
    variance of its input, the bias is ``softplus^-1`` of steps drawn
    log-uniformly in ``[dt_min, dt_max]``, so every channel starts with its
    own time scale."""
    std = dt_rank**-0.5 * dt_scale
    nn.init.uniform_(dt_proj.weight, -std, std)
    d_inner = dt_proj.out_features
    dt = torch.exp(
        torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) +
        math.log(dt_min)).clamp(min=dt_init_floor)
    with torch.no_grad():
        dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))


@ATTENTIONS.register_module()
class MambaLayer(nn.Module):
    """A Mamba block (Gu & Dao, "Mamba: Linear-Time Sequence Modeling with
    Selective State Spaces", 2023) as the token mixer of an encoder block.

    ``in_proj`` splits each token into a stream ``x`` and a gate ``z``;
    ``x`` goes through a causal depthwise conv and a *selective* SSM whose
    step ``delta`` and matrices ``B, C`` depend on the token (so the layer
    can choose what to remember), then is gated by ``silu(z)`` and projected
    back by ``out_proj``. Time and memory are linear in the number of
    tokens (see :func:`selective_scan`); on a GPU with ``mamba_ssm``
    installed, its fused kernel runs the scan.

    Video tokens come in raster order ``(T, H, W)``; a causal scan would let
    a token see only what precedes it, so ``bidirectional=True`` (as in
    Vision Mamba, Zhu et al., ICML 2024) adds a second scan over the
    reversed sequence with its own conv/SSM parameters (``*_b``) and
    averages the two before ``out_proj``.

    Contract notes. ``shape`` is ignored (the scan runs over the token
    order). ``size``, the number of tubelets a merged token stands for,
    multiplies the step ``delta``: holding an input for ``s`` steps of
    length ``delta`` is one step of length ``s * delta`` for the
    continuous-time system, so a merged token weighs as long in the state as
    the tokens it replaced. ``memory`` is not supported (use
    :meth:`forward_with_state` to carry a state across clips instead).
    ``num_heads`` and ``qkv_bias`` are accepted for the common signature and
    unused; ``attn_drop`` must be 0 since there are no attention weights.

    Weights: ``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``,
    ``D`` and ``out_proj`` have the names, shapes and initialisation of the
    reference ``mamba_ssm.Mamba``, so its state dict loads as is (the
    reverse direction adds Vision Mamba's ``conv1d_b``, ..., ``A_b_log``,
    ``D_b``).

    Args:
        embed_dims (int): Channels ``C`` (``d_model``).
        num_heads (int): Unused.
        qkv_bias (bool): Unused.
        attn_drop (float): Must be 0.
        proj_drop (float): Dropout after ``out_proj``.
        d_state (int): SSM state size ``S`` per channel.
        d_conv (int): Kernel of the causal depthwise conv.
        expand (int): ``d_inner = expand * embed_dims``.
        dt_rank (int | str): Rank of the ``delta`` projection; ``'auto'`` is
            ``ceil(embed_dims / 16)``.
        dt_min, dt_max, dt_init_floor, dt_scale (float): Initial steps.
        conv_bias (bool): Bias of the conv.
        bias (bool): Bias of ``in_proj`` / ``out_proj``.
        bidirectional (bool): Add the reversed scan.
        block_size (int): Tokens per block of the PyTorch scan; 16 keeps
            a block's ``[T, d_state, D_inner]`` work buffers in a CPU's L2
            cache at ``D_inner = 1024``.
        use_kernel (bool): Use ``mamba_ssm``'s CUDA scan when available.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: Optional[int] = None,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 d_state: int = 16,
                 d_conv: int = 4,
                 expand: int = 2,
                 dt_rank: Union[int, str] = 'auto',
                 dt_min: float = 0.001,
                 dt_max: float = 0.1,
                 dt_init_floor: float = 1e-4,
                 dt_scale: float = 1.0,
                 conv_bias: bool = True,
                 bias: bool = False,
                 bidirectional: bool = False,
                 block_size: int = 16,
                 use_kernel: bool = True) -> None:
        super().__init__()
        if attn_drop:
            raise ValueError(f'attn_drop={attn_drop}: MambaLayer has no '
                             'attention weights to drop; set it to 0')
        for name, value in (('embed_dims', embed_dims), ('d_state', d_state),
                            ('d_conv', d_conv), ('expand', expand)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(
                    f'{name}={value!r} must be a positive integer')
        if dt_rank == 'auto':
            dt_rank = math.ceil(embed_dims / 16)
        if not isinstance(dt_rank, int) or dt_rank <= 0:
            raise ValueError(f"dt_rank={dt_rank!r} must be 'auto' or a "
                             'positive integer')
        self.embed_dims = embed_dims
        self.d_inner = expand * embed_dims
        self.bidirectional = bidirectional
        self.block_size = block_size
        self.use_kernel = use_kernel
        self.in_proj = nn.Linear(embed_dims, 2 * self.d_inner, bias=bias)
        self.d_state, self.d_conv, self.dt_rank = d_state, d_conv, dt_rank
        dt_init = dict(dt_min=dt_min, dt_max=dt_max,
                       dt_init_floor=dt_init_floor, dt_scale=dt_scale)
        # The reference names for the causal direction; Vision Mamba's
        # suffixed names (conv1d_b, ..., A_b_log, D_b) for the reverse one.
        for suffix in ([''] + (['_b'] if bidirectional else [])):
            setattr(self, f'conv1d{suffix}', nn.Conv1d(
                self.d_inner, self.d_inner, d_conv, groups=self.d_inner,
                padding=d_conv - 1, bias=conv_bias))
            setattr(self, f'x_proj{suffix}', nn.Linear(
                self.d_inner, dt_rank + 2 * d_state, bias=False))
            dt_proj = nn.Linear(dt_rank, self.d_inner, bias=True)
            _init_dt_proj(dt_proj, dt_rank, **dt_init)
            setattr(self, f'dt_proj{suffix}', dt_proj)
            # S4D-real initialisation A[:, n] = -(n + 1), stored as log(-A).
            A = torch.arange(1, d_state + 1, dtype=torch.float32)
            A_log = nn.Parameter(A.log().repeat(self.d_inner, 1))  # [D, S]
            D = nn.Parameter(torch.ones(self.d_inner))
            A_log._no_weight_decay = True
            D._no_weight_decay = True
            setattr(self, f'A{suffix}_log', A_log)
            setattr(self, f'D{suffix}', D)
        self.out_proj = nn.Linear(self.d_inner, embed_dims, bias=bias)
        self.proj_drop = nn.Dropout(proj_drop)

    def _conv_input(self, x: Tensor, state: Optional[MambaState]
                    ) -> Tuple[Tensor, Tensor]:
        """``x [B, L, D_inner]`` behind the carried (or zero) last
        ``d_conv - 1`` inputs: the causal conv's input ``[B, K - 1 + L, D]``,
        and the conv state to carry on, ``[B, D, K - 1]``."""
        B, L, Di = x.shape
        K = self.d_conv
        prev = x.new_zeros(B, K - 1, Di) if state is None \
            else state.conv.to(x.dtype).transpose(1, 2)
        padded = torch.cat([prev, x], dim=1)  # [B, K - 1 + L, D]
        return padded, padded[:, padded.shape[1] - (K - 1):].transpose(1, 2)

    def _scan(self, x: Tensor, z: Tensor, size: Optional[Tensor],
              state: Optional[MambaState],
              suffix: str = '') -> Tuple[Tensor, MambaState]:
        """One direction: ``x, z [B, L, D_inner]`` -> gated scan output
        ``[B, L, D_inner]`` and the state after the last token."""
        conv1d = getattr(self, f'conv1d{suffix}')
        x_proj = getattr(self, f'x_proj{suffix}')
        dt_proj = getattr(self, f'dt_proj{suffix}')
        A_log = getattr(self, f'A{suffix}_log')
        D = getattr(self, f'D{suffix}')
        padded, next_conv = self._conv_input(x, state)
        u = _CausalConvSiLU.apply(padded, conv1d.weight[:, 0],
                                  conv1d.bias)  # [B, L, D]
        dt, B_ssm, C_ssm = x_proj(u).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(dt_proj(dt))  # [B, L, D]
        if size is not None:
            delta = delta * size.to(delta.dtype)[..., None]
        A = -torch.exp(A_log.float())  # [D, S], < 0: a decaying state
        y, ssm = selective_scan(
            u, delta, A, B_ssm, C_ssm, D, z,
            initial_state=None if state is None else state.ssm,
            block_size=self.block_size,
            use_kernel=self.use_kernel)
        return y, MambaState(next_conv, ssm)

    def _use_kernel(self, x: Tensor, state: Optional[MambaState]) -> bool:
        """Whether ``mamba_ssm``'s CUDA scan runs (composed with separate
        conv and projections, as in the reference); otherwise the fused
        PyTorch path (:func:`.mamba_inner`) does."""
        return (self.use_kernel and _scan_module._mamba_ssm_scan is not None
                and x.is_cuda and state is None)

    def _fused(self,
               x: Tensor,
               z: Tensor,
               size: Optional[Tensor],
               state: Optional[MambaState],
               suffix: str = '',
               scale: float = 1.) -> Tuple[Tensor, MambaState]:
        """One direction from ``x, z [B, L, D_inner]`` to ``scale *
        out_proj`` without its bias, ``[B, L, C]``, and the state after the
        last token. Same result as :meth:`_scan` followed by ``out_proj``,
        but only the conv input and ``z`` are kept for the backward pass
        (see :mod:`.mamba_fused`)."""
        conv1d = getattr(self, f'conv1d{suffix}')
        dt_proj = getattr(self, f'dt_proj{suffix}')
        A_log = getattr(self, f'A{suffix}_log')
        padded, next_conv = self._conv_input(x, state)
        out, ssm = mamba_inner(
            padded, z, conv1d.weight[:, 0], conv1d.bias,
            getattr(self, f'x_proj{suffix}').weight, dt_proj.weight,
            dt_proj.bias, -torch.exp(A_log.float()),
            getattr(self, f'D{suffix}'), self.out_proj.weight, size,
            initial_state=None if state is None else state.ssm,
            scale=scale, block_size=self.block_size)
        return out, MambaState(next_conv, ssm)

    def _out_bias(self, out: Tensor) -> Tensor:
        bias = self.out_proj.bias
        return out if bias is None else out + bias

    def _in_proj(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        """``in_proj`` as two products, one per half of its weight: two
        contiguous ``[B, L, D_inner]`` tensors instead of two views that
        keep the whole ``[B, L, 2 D_inner]`` output alive."""
        weight, bias = self.in_proj.weight, self.in_proj.bias
        Di = self.d_inner
        xs = F.linear(x, weight[:Di], None if bias is None else bias[:Di])
        z = F.linear(x, weight[Di:], None if bias is None else bias[Di:])
        return xs, z

    def _check(self, x: Tensor, size: Optional[Tensor]) -> None:
        if x.dim() != 3 or x.shape[2] != self.embed_dims:
            raise ValueError(f'x has shape {tuple(x.shape)}, expected '
                             f'[B, N, C={self.embed_dims}]')
        if size is not None and tuple(size.shape) != tuple(x.shape[:2]):
            raise ValueError(f'size has shape {tuple(size.shape)}, expected '
                             f'[B, N] = {list(x.shape[:2])}')

    def forward_with_state(
            self,
            x: Tensor,
            state: Optional[MambaState] = None,
            size: Optional[Tensor] = None) -> Tuple[Tensor, MambaState]:
        """Causal scan that continues from ``state``: feeding a long video
        clip by clip, passing each returned state to the next call, gives
        the same output as one call on the whole sequence.

        Args:
            x (Tensor): ``[B, L, C]``.
            state (MambaState, optional): From the previous call.
            size (Tensor, optional): ``[B, L]`` tubelets per token.

        Returns:
            tuple: ``[B, L, C]`` and the state after the last token.
        """
        if self.bidirectional:
            raise ValueError('forward_with_state needs bidirectional=False: '
                             'the reversed scan would need future clips')
        self._check(x, size)
        xs, z = self._in_proj(x)  # each [B, L, D_inner]
        if not self._use_kernel(x, state):
            out, state = self._fused(xs, z, size, state)
            return self.proj_drop(self._out_bias(out)), state
        y, state = self._scan(xs, z, size, state)
        return self.proj_drop(self.out_proj(y)), state

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Mix tokens.

        Args:
            x (Tensor): ``[B, N, C]``.
            shape (tuple, optional): Ignored.
            size (Tensor, optional): ``[B, N]``; scales the step ``delta``.
            memory (Tensor, optional): Not supported; must be ``None``.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        if memory is not None:
            raise ValueError('MambaLayer takes no memory tokens; carry a '
                             'state with forward_with_state instead')
        self._check(x, size)
        xs, z = self._in_proj(x)  # each [B, N, D_inner]
        flip = (lambda t: None if t is None else t.flip(1))
        if not self._use_kernel(x, None):
            # out_proj is linear: the mean of the two directions before it
            # is the sum of each direction's output at half scale.
            scale = 0.5 if self.bidirectional else 1.
            out, _ = self._fused(xs, z, size, None, scale=scale)
            if self.bidirectional:
                out_back, _ = self._fused(flip(xs), flip(z), flip(size), None,
                                          '_b', scale)
                out = out + out_back.flip(1)
            return self.proj_drop(self._out_bias(out))
        y, _ = self._scan(xs, z, size, None)  # [B, N, D_inner]
        if self.bidirectional:
            y_back, _ = self._scan(flip(xs), flip(z), flip(size), None, '_b')
            y = (y + y_back.flip(1)) / 2  # [B, N, D_inner]
        return self.proj_drop(self.out_proj(y))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, d_inner={self.d_inner}, '
                f'bidirectional={self.bidirectional}')

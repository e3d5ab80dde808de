"""Bring per-pixel cue maps onto the token grid.

Motion, edges and colour are measured on (downsampled) frames, but the
merger decides per token; both mergers and tests need the same mapping, so
it lives here once.

The cue frames are small (a few pixels per token), so the pooling here is
bound not by arithmetic but by the number and kind of ops: CPU
``adaptive_avg_pool3d`` and ``avg_pool2d`` are scalar loops, 3-10x slower
than a matrix product with a small averaging matrix, which also gives
adaptive pooling's exact windows for any size. The matrices are cached.
"""
from functools import lru_cache
from typing import Optional, Sequence, Tuple, Union

import torch
from torch import Tensor


@lru_cache(maxsize=64)
def window_mean_matrix(starts: Tuple[int, ...],
                       ends: Tuple[int, ...],
                       size: int,
                       scale: float,
                       device: torch.device,
                       dtype: torch.dtype,
                       transpose: bool = False) -> Tensor:
    """``[len(starts), size]`` matrix whose row ``i`` averages the entries
    ``starts[i] .. ends[i] - 1`` of a length-``size`` vector, times
    ``scale``; with ``transpose``, its contiguous transpose (to multiply
    from the right without a transpose op).

    Cached: the merger needs the same few matrices at every forward, and
    building one takes more small ops than using it. Callers must not
    modify the result in place. Built outside inference mode, so a matrix
    first asked for during inference still works in training.
    """
    with torch.inference_mode(False):
        start = torch.tensor(starts, device=device)[:, None]
        end = torch.tensor(ends, device=device)[:, None]
        columns = torch.arange(size, device=device)
        inside = ((columns >= start) & (columns < end)).to(dtype)
        matrix = inside * (scale / inside.sum(1, keepdim=True))
        return matrix.t().contiguous() if transpose else matrix


def adaptive_pool_matrix(size_in: int,
                         size_out: int,
                         like: Tensor,
                         transpose: bool = False) -> Tensor:
    """``[size_out, size_in]`` averaging matrix of 1-d adaptive average
    pooling (windows ``floor(i * in / out) .. ceil((i + 1) * in / out)``,
    as ``adaptive_avg_pool*d``), on ``like``'s device and dtype; see
    :func:`window_mean_matrix` for ``transpose``."""
    starts = tuple(i * size_in // size_out for i in range(size_out))
    ends = tuple(-(-(i + 1) * size_in // size_out) for i in range(size_out))
    return window_mean_matrix(starts, ends, size_in, 1., like.device,
                              like.dtype, transpose)


def downsample_frames(frames: Tensor, grid: Tuple[int, int, int],
                      scale: int) -> Tensor:
    """Average-pool frames to ``scale`` pixels per token side (the windows
    of ``F.adaptive_avg_pool3d``; time is kept).

    Cues are cheap at this resolution (the flow cost volume grows with the
    pixel count) and still resolve motion inside one token.

    Args:
        frames (Tensor): ``[B, C, T, H, W]`` clips.
        grid (tuple): ``(T0, H0, W0)`` token grid.
        scale (int): Pixels per token side of the result (>= 1).

    Returns:
        Tensor: ``[B, C, T, H0*scale, W0*scale]`` float32.
    """
    if scale < 1:
        raise ValueError(f'scale={scale} must be >= 1')
    B, C, T, H, W = frames.shape
    h, w = grid[1] * scale, grid[2] * scale
    frames = frames.float()
    # Windows are boxes, so the pooling separates: one product per side.
    rows = torch.mm(frames.reshape(-1, W),
                    adaptive_pool_matrix(W, w, frames, transpose=True))
    small = torch.bmm(
        adaptive_pool_matrix(H, h, frames).expand(B * C * T, h, H),
        rows.view(B * C * T, H, w))  # [B*C*T, h, w]
    return small.view(B, C, T, h, w)


@lru_cache(maxsize=32)
def _grid_pool_matrices(
        times: Tuple[int, ...], height: int, width: int,
        grid: Tuple[int, int, int], device: torch.device,
        dtype: torch.dtype) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """What :func:`pool_to_grid` multiplies with: ``[H*W, H0*W0]`` (pixels
    to token cells, the Kronecker product of the two sides' adaptive
    pooling, right-hand) and ``[S*T0, sum(times)]`` (each map's frames to
    token steps, block-diagonal); ``None`` where nothing is pooled."""
    with torch.inference_mode(False):
        like = torch.empty(0, device=device, dtype=dtype)
        T0, H0, W0 = grid
        space = None
        if (height, width) != (H0, W0):
            space = torch.kron(
                adaptive_pool_matrix(height, H0, like),
                adaptive_pool_matrix(width, W0, like)).t().contiguous()
        time = None
        if any(t != T0 for t in times):
            time = torch.block_diag(
                *[adaptive_pool_matrix(t, T0, like) for t in times])
        return space, time


def pool_to_grid(cue: Union[Tensor, Sequence[Tensor]],
                 grid: Tuple[int, int, int]) -> Tensor:
    """Average per-pixel maps over each token's tubelet (the windows of
    ``F.adaptive_avg_pool3d``).

    Args:
        cue (Tensor | Sequence[Tensor]): a ``[B, T, H, W]`` map on
            (downsampled) frames, or ``S`` such maps (their ``T`` may
            differ, e.g. motion per frame pair and edges per frame), which
            are pooled together by the same two matrix products.
        grid (tuple): ``(T0, H0, W0)``.

    Returns:
        Tensor: ``[B, T0*H0*W0]`` (or ``[B, S, T0*H0*W0]`` for a sequence) in
        the tokens' ``(t, h, w)`` order.
    """
    maps = [cue] if isinstance(cue, Tensor) else list(cue)
    B, _, H, W = maps[0].shape
    T0, H0, W0 = grid
    times = tuple(m.shape[1] for m in maps)
    x = [m.reshape(B, t, H * W) for m, t in zip(maps, times)]
    x = x[0] if len(x) == 1 else torch.cat(x, 1)  # [B, sum(T), H*W]
    space, time = _grid_pool_matrices(times, H, W, tuple(grid), x.device,
                                      x.dtype)
    if time is not None:
        x = torch.bmm(time.expand(B, *time.shape), x)  # [B, S*T0, H*W]
    if space is not None:
        x = torch.mm(x.reshape(-1, H * W), space)  # [B*S*T0, H0*W0]
    x = x.reshape(B, len(maps), T0 * H0 * W0)  # [B, S, N]
    return x[:, 0] if isinstance(cue, Tensor) else x


def normalize_per_clip(cue: Tensor, floor: float = 0.) -> Tensor:
    """Scale ``[B, N]`` non-negative scores to ``[0, 1]`` by each clip's
    maximum, but never by less than ``floor``: without a floor the sensor
    noise of a static clip would be blown up to full importance.
    ``[B, N, S]`` scales each of the ``S`` maps by its own maximum."""
    top = cue.amax(dim=1, keepdim=True).clamp_min(max(floor, 1e-12))
    return (cue / top).clamp(0, 1)  # [B, N] or [B, N, S]

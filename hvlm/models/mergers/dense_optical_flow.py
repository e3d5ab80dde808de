"""Dense optical flow from a local matching cost volume, in torch."""
import math
from functools import lru_cache
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import MERGERS
from .grid_maps import window_mean_matrix


@MERGERS.register_module()
class DenseOpticalFlow(nn.Module):
    """Flow between consecutive frames by soft block matching.

    For every pixel ``p`` of frame ``t`` and every displacement ``d`` of a
    ``window_size x window_size`` search window, the matching cost is the
    squared distance between the feature at ``p`` and the feature at
    ``p + d`` in frame ``t + 1``. That distance is the correlation
    ``<f_t(p), f_{t+1}(p+d)>`` plus the two energies, so it behaves like a
    correlation volume (FlowNet's, Dosovitskiy et al. 2015) but is not fooled
    by bright patches. The flow is the soft-argmin over the window
    (``softmax(-cost / temperature)``-weighted mean displacement), which is
    sub-pixel and differentiable. ``smoothness`` adds ``|d|^2`` to the cost
    so that flat, texture-less areas, where every displacement matches
    equally well, report zero motion instead of the window's average.

    Each clip is standardised first (zero mean, unit variance), so
    ``temperature`` is in units of that variance whatever the input scale.
    Displacements that leave the frame are excluded, so a static clip gives
    zero flow up to its borders. Costs are averaged over a small patch
    (``patch_size``), since one pixel matches many displacements by chance.
    It runs on any channels: grey or RGB frames, or token features laid out
    as ``[B, C, T, H, W]``. Every window is a strided view of the padded
    frame, so there is no loop and no im2col copy.

    Args:
        window_size (int): Odd side of the search window in pixels of the
            input (15 in the original config: displacements up to 7).
        temperature (float): Softness of the argmin, in cost units.
        smoothness (float): Weight of the ``|d|^2`` prior.
        patch_size (int): Odd side of the patch whose costs are averaged.
    """

    def __init__(self,
                 window_size: int = 15,
                 temperature: float = 0.02,
                 smoothness: float = 0.03,
                 patch_size: int = 3) -> None:
        super().__init__()
        if window_size < 1 or window_size % 2 == 0:
            raise ValueError(f'window_size={window_size} must be a positive '
                             'odd integer')
        if temperature <= 0:
            raise ValueError(f'temperature={temperature} must be > 0')
        if patch_size < 1 or patch_size % 2 == 0:
            raise ValueError(f'patch_size={patch_size} must be a positive '
                             'odd integer')
        self.window_size = window_size
        self.patch_size = patch_size
        self.temperature = temperature
        self.smoothness = smoothness

    @staticmethod
    def window_offsets(window_size: int, device: torch.device) -> Tensor:
        """``[2, w*w]`` displacements ``(dx, dy)`` of a window, row-major
        (``dy`` outer), the order in which windows are enumerated."""
        r = window_size // 2
        steps = torch.arange(-r, r + 1., device=device)
        dy, dx = torch.meshgrid(steps, steps, indexing='ij')
        return torch.stack([dx.flatten(), dy.flatten()])  # [2, w*w]

    def forward(self,
                frames: Tensor,
                window_size: Optional[int] = None,
                stride: int = 1) -> Tensor:
        """Args:
            frames (Tensor): ``[B, C, T, H, W]``, ``T >= 2``.
            window_size (int, optional): Overrides the configured window,
                e.g. scaled to frames a caller has downsampled.
            stride (int): Flow from frame ``t`` to ``t + 1`` for every
                ``stride``-th ``t`` only (e.g. one pair per tubelet).

        Returns:
            Tensor: ``[B, 2, P, H, W]`` flow ``(dx, dy)`` in pixels from
            frame ``t`` to ``t + 1``, ``t = 0, stride, ...``, ``t < T - 1``
            (``P = T - 1`` pairs with ``stride=1``).
        """
        if frames.dim() != 5 or frames.shape[2] < 2:
            raise ValueError('DenseOpticalFlow expects frames [B, C, T, H, W]'
                             f' with T >= 2, got {tuple(frames.shape)}')
        B, C, T, H, W = frames.shape
        w = self.window_size if window_size is None else window_size
        if w < 1 or w % 2 == 0:
            raise ValueError(f'window_size={w} must be a positive odd '
                             'integer')
        if stride < 1:
            raise ValueError(f'stride={stride} must be >= 1')
        r, K = w // 2, w * w
        # Standardise per clip so that temperature and smoothness mean the
        # same for raw pixels, normalised pixels or features (two passes:
        # torch.std is 5x slower on these small clips).
        clip = frames.float().reshape(B, -1)  # [B, C*T*H*W]
        clip = clip - clip.mean(1, keepdim=True)
        std = torch.linalg.vector_norm(clip, dim=1, keepdim=True)
        std = std * (clip.shape[1] - 1)**-0.5
        frames = (clip / std.clamp_min(1e-6)).view(B, C, T, H, W)
        src = frames[:, :, 0:T - 1:stride]  # [B, C, P, H, W]
        dst = frames[:, :, 1::stride]  # [B, C, P, H, W]
        P = src.shape[2]
        N = B * P
        # Every window of the next frame is a strided view of it (no im2col
        # copy). The squared differences go to one contiguous volume laid
        # out [H, w, w, B, P, C, W]: rows outermost, so that both box passes
        # below are single matrix products, then the displacements, so that
        # the reductions over them run over contiguous planes (10x faster on
        # CPU than over rows of w * w values).
        windows = F.pad(dst, (r, r, r, r)).unfold(3, w, 1).unfold(4, w, 1)
        layout = (3, 5, 6, 0, 2, 1, 4)  # [B, C, P, H, W, w, w] -> above
        cost = src[..., None, None].expand(windows.shape).permute(
            layout).contiguous()
        cost = cost.sub_(windows.permute(layout)).square_()
        if C > 1:
            cost = cost.mean(5)
        # A single pixel matches many displacements by chance, so costs are
        # averaged over a patch (block matching; at the borders over the
        # pixels inside). The box is separable: one small averaging matrix
        # per side, the second also carrying -1 / temperature, so the result
        # is the logit up to the prior.
        k = self.patch_size // 2
        logits = torch.mm(_patch_mean_matrix(H, k, 1., cost),
                          cost.view(H, K * N * W))  # [H, K*N*W]
        logits = torch.mm(
            logits.view(H * K * N, W),
            _patch_mean_matrix(W, k, -1 / self.temperature, cost).t())
        # The |d|^2 prior, and -inf for displacements that leave the frame:
        # impossible, not free.
        offsets, prior = _displacement_terms(
            w, H, W, self.smoothness / self.temperature, frames.device)
        logits = logits.view(H, K, N, W).add_(prior)  # [H, K, N, W]
        # Relative to the best match and floored at -60: exp() of the far
        # worse (and of the impossible) matches would otherwise underflow,
        # which CPU exp() handles 20-100x slower than normal numbers, and
        # weights near the float32 minimum leave denormal partial sums in
        # the weighted sums below (10x slower). e^-60 is 1e-26 of the best
        # match's weight, far below float32 resolution: the flow does not
        # change.
        logits = logits - logits.amax(1, keepdim=True)
        weight = logits.clamp_(min=-60.).exp_()  # [H, K, N, W]
        # Soft-argmin: one product gives the weighted sums of dx, dy and of
        # the weights (the softmax normaliser).
        sums = torch.bmm(offsets.expand(H, 3, K),
                         weight.view(H, K, N * W))  # [H, 3, N*W]
        flow = sums[:, :2] / sums[:, 2:]  # [H, 2, N*W]
        return flow.view(H, 2, B, P, W).permute(2, 1, 3, 0, 4)

    def extra_repr(self) -> str:
        return (f'window_size={self.window_size}, '
                f'temperature={self.temperature}')


def _patch_mean_matrix(size: int, radius: int, scale: float,
                       like: Tensor) -> Tensor:
    """``[size, size]`` matrix averaging each position's neighbours within
    ``radius`` that lie inside ``0 .. size - 1`` (``avg_pool`` with
    ``count_include_pad=False`` along one side), times ``scale``."""
    starts = tuple(max(i - radius, 0) for i in range(size))
    ends = tuple(min(i + radius + 1, size) for i in range(size))
    return window_mean_matrix(starts, ends, size, scale, like.device,
                              like.dtype)


@lru_cache(maxsize=16)
def _displacement_terms(window_size: int, height: int, width: int,
                        prior_weight: float,
                        device: torch.device) -> Tuple[Tensor, Tensor]:
    """What the flow adds to and reads from its cost volume, fixed by the
    geometry, so cached.

    Returns:
        tuple: ``[3, w*w]`` rows ``dx``, ``dy`` and ones (the soft-argmin's
        weighted sums and normaliser in one product), and the ``[H, w*w, 1,
        W]`` log-prior ``-prior_weight * |d|^2``, ``-inf`` where ``p + d``
        leaves the frame (laid out like the flow's cost volume).
    """
    with torch.inference_mode(False):
        r = window_size // 2
        offsets = DenseOpticalFlow.window_offsets(window_size, device)
        steps = torch.arange(-r, r + 1, device=device)
        inside_y = (steps[:, None] + torch.arange(height, device=device))
        inside_x = (steps[:, None] + torch.arange(width, device=device))
        inside_y = (inside_y >= 0) & (inside_y < height)  # [w, H]
        inside_x = (inside_x >= 0) & (inside_x < width)  # [w, W]
        inside = inside_y[:, None, :, None] & inside_x[None, :, None, :]
        prior = (-prior_weight * offsets.square().sum(0)).view(-1, 1, 1)
        prior = prior.masked_fill(
            ~inside.reshape(-1, height, width), -math.inf)  # [w*w, H, W]
        ones = offsets.new_ones(1, offsets.shape[1])
        return torch.cat([offsets, ones]), prior.transpose(0, 1).unsqueeze(
            2).contiguous()  # [3, w*w], [H, w*w, 1, W]

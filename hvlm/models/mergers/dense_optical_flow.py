"""Dense optical flow from a local matching cost volume, in torch."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import MERGERS


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
        r = w // 2
        offsets = self.window_offsets(w, frames.device)  # [2, w*w]
        # Standardise per clip so that temperature and smoothness mean the
        # same for raw pixels, normalised pixels or features.
        frames = frames.float()
        mean = frames.mean(dim=(1, 2, 3, 4), keepdim=True)
        std = frames.std(dim=(1, 2, 3, 4), keepdim=True)
        frames = (frames - mean) / std.clamp_min(1e-6)  # [B, C, T, H, W]
        first = torch.arange(0, T - 1, stride, device=frames.device)
        P = first.numel()
        src = frames[:, :, first].transpose(1, 2).reshape(-1, C, H, W)
        dst = frames[:, :, first + 1].transpose(1, 2).reshape(-1, C, H, W)
        # [B*P, C, H, W] each
        # Tensor.unfold gives every window as a view (no im2col copy, which
        # is slow on CPU for a 15 x 15 window).
        windows = F.pad(dst, (r, r, r, r)).unfold(2, w, 1).unfold(3, w, 1)
        # [B*P, C, H, W, w, w]
        if C == 1:  # grey frames: no channel reduction over a strided view
            cost = (windows[:, 0] - src[:, 0, ..., None, None]).square()
        else:
            cost = (windows - src[..., None, None]).square().mean(1)
        # [B*P, H, W, w, w] -> [B*P, H, W, w*w]: displacements innermost,
        # so the softmax and the weighted sum below run on contiguous rows.
        cost = cost.reshape(-1, H, W, w * w)
        # A single pixel matches many displacements by chance, so costs are
        # averaged over a patch (block matching). The permuted view is
        # channels-last, which avg_pool2d keeps (10x faster than NCHW here).
        if self.patch_size > 1:
            cost = F.avg_pool2d(
                cost.permute(0, 3, 1, 2),
                self.patch_size,
                stride=1,
                padding=self.patch_size // 2,
                count_include_pad=False).permute(0, 2, 3, 1)
        # Displacements that leave the frame are impossible, not free.
        outside = F.pad(frames.new_zeros(H, W), (r, r, r, r),
                        value=1.).unfold(0, w, 1).unfold(1, w, 1).reshape(
                            H, W, w * w).bool()  # [H, W, w*w]
        prior = offsets.square().sum(0)  # [w*w]
        cost = cost + (self.smoothness * prior).masked_fill(
            outside, torch.inf)
        # Logits relative to the best match, floored at -80: exp() of the
        # far worse matches would otherwise be denormal floats, which made
        # the softmax and the weighted sum 5-10x slower on CPU; e^-80 is
        # 1e-35 of the best match's weight, so the flow does not change.
        best = cost.amin(-1, keepdim=True)
        logits = torch.sub(best, cost).div_(self.temperature).clamp_(min=-80.)
        logits = logits.masked_fill(outside, -torch.inf)
        weight = torch.softmax(logits, dim=-1)  # [B*P, H, W, w*w]
        flow = weight @ offsets.t()  # [B*P, H, W, 2]
        flow = flow.view(B, P, H, W, 2).permute(0, 4, 1, 2, 3)
        return flow  # [B, 2, P, H, W]

    def extra_repr(self) -> str:
        return (f'window_size={self.window_size}, '
                f'temperature={self.temperature}')

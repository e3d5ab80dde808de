"""The fine-tuning recipe's augmentation presets, per sample, in torch."""
from typing import List, Tuple

import torch
from torch import Tensor

from hvlm.registry import MODELS
from ..layers.image_augment import (adjust_brightness, adjust_contrast,
                                    adjust_saturation, cutout,
                                    gaussian_blur, grid_distortion, hflip,
                                    posterize, resized_crop, rotate,
                                    sample_resized_crop, solarize)
from .simclr_views import SimCLRViews

# What each severity adds to the one before (the seed's table).
SEVERITIES = {
    'light': ('crop', 'flip'),
    'moderate': ('crop', 'flip', 'color_jitter', 'blur', 'rotation'),
    'aggressive': ('crop', 'flip', 'color_jitter', 'blur', 'rotation',
                   'randaugment', 'cutout', 'grid_distortion'),
}
RANDAUGMENT_OPS = ('identity', 'rotate', 'brightness', 'contrast',
                   'saturation', 'solarize', 'posterize', 'translate_x',
                   'translate_y')


@MODELS.register_module()
class SeverityAugment:
    """Training augmentation by named severity (a batch augment of
    :class:`ImageDataPreprocessor`, on ``[0, 1]`` floats ``[B, C, H, W]``),
    every sample drawing its own parameters:

    ============  =====================================================
    light         random resized crop (area 0.5-1), horizontal flip
    moderate      + colour jitter (0.3, p 0.8), Gaussian blur (p 0.3),
                  rotation (+-15 degrees)
    aggressive    + RandAugment (2 ops of magnitude 9/10 per sample),
                  Cutout (p 0.5, a quarter of the side),
                  GridDistortion (p 0.3, 4x4 control points, +-0.3 cell)
    ============  =====================================================

    An unknown severity is an error (the seed silently fell back to
    ``moderate``).

    Args:
        severity (str): ``'light'``, ``'moderate'`` or ``'aggressive'``.
        magnitude (int): RandAugment magnitude, 0-10.
        num_ops (int): RandAugment operations per sample.
    """

    def __init__(self, severity: str = 'moderate', magnitude: int = 9,
                 num_ops: int = 2) -> None:
        if severity not in SEVERITIES:
            raise ValueError(f'severity={severity!r} is not one of '
                             f'{tuple(SEVERITIES)}')
        if not 0 <= magnitude <= 10:
            raise ValueError(f'magnitude={magnitude} must be in [0, 10]')
        self.severity, self.ops = severity, SEVERITIES[severity]
        self.magnitude, self.num_ops = magnitude, num_ops
        self._jitter = SimCLRViews(crop_size=8, jitter=(0.3, 0.3, 0.3, 0.05))

    def __call__(self, inputs: Tensor,
                 data_samples: List) -> Tuple[Tensor, List]:
        if inputs.dim() == 5:  # frames: every frame of a video alike
            raise ValueError('SeverityAugment expects images [B, C, H, W]')
        B, _, H, W = inputs.shape
        x = inputs
        if 'crop' in self.ops:
            x = resized_crop(x, sample_resized_crop(B, H, W, (0.5, 1.)),
                             (H, W))
        if 'flip' in self.ops:
            x = hflip(x, torch.rand(B) < 0.5)
        if 'color_jitter' in self.ops:
            p = self._jitter.sample_params(B, H, W)
            x = adjust_brightness(x, p['brightness'])
            x = adjust_contrast(x, p['contrast'])
            x = adjust_saturation(x, p['saturation'])
        if 'blur' in self.ops:
            sigma = torch.where(torch.rand(B) < 0.3,
                                0.1 + 1.9 * torch.rand(B), torch.zeros(B))
            x = gaussian_blur(x, sigma, max(3, H // 10 // 2 * 2 + 1))
        if 'rotation' in self.ops:
            x = rotate(x, (torch.rand(B) * 2 - 1) * 15)
        if 'randaugment' in self.ops:
            x = self.randaugment(x)
        if 'cutout' in self.ops:
            side = torch.full((B, ), float(H // 4))
            boxes = torch.stack([
                (torch.rand(B) * (H - side + 1)).floor(),
                (torch.rand(B) * (W - side + 1)).floor(),
                torch.where(torch.rand(B) < 0.5, side, torch.zeros(B)),
                side
            ], 1)
            x = cutout(x, boxes)
        if 'grid_distortion' in self.ops:
            offsets = (torch.rand(B, 2, 5, 5) * 2 - 1) * 0.3 * 2 / 4
            offsets *= (torch.rand(B) < 0.3).view(B, 1, 1, 1)
            x = grid_distortion(x, offsets)
        return x.clamp(0, 1), data_samples

    def randaugment(self, x: Tensor) -> Tensor:
        """``num_ops`` operations per sample, chosen uniformly from
        :data:`RANDAUGMENT_OPS`, each at ``magnitude`` with a random
        sign."""
        B, _, H, W = x.shape
        m = self.magnitude / 10
        for _ in range(self.num_ops):
            choice = torch.randint(len(RANDAUGMENT_OPS), (B, ))
            sign = torch.where(torch.rand(B) < 0.5, -1., 1.)
            out = x.clone()
            for k, name in enumerate(RANDAUGMENT_OPS):
                idx = (choice == k).nonzero().flatten()
                if name == 'identity' or len(idx) == 0:
                    continue
                xs, s = x[idx], sign[idx]
                if name == 'rotate':
                    xs = rotate(xs, 30 * m * s)
                elif name in ('brightness', 'contrast', 'saturation'):
                    fn = dict(brightness=adjust_brightness,
                              contrast=adjust_contrast,
                              saturation=adjust_saturation)[name]
                    xs = fn(xs, 1 + 0.9 * m * s)
                elif name == 'solarize':
                    xs = solarize(xs, torch.full((len(idx), ), 1 - m))
                elif name == 'posterize':
                    xs = posterize(xs, torch.full((len(idx), ),
                                                  8 - round(4 * m)))
                else:
                    shift = 0.3 * m * s
                    zero = torch.zeros(len(idx))
                    dy, dx = (shift * H, zero) if name == 'translate_y' \
                        else (zero, shift * W)
                    boxes = torch.stack([dy, dx, torch.full_like(zero, H),
                                         torch.full_like(zero, W)], 1)
                    xs = resized_crop(xs, boxes, (H, W))
                out[idx] = xs
            x = out
        return x

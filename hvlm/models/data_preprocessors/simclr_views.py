"""Two randomly augmented views of every image, each sample drawing its
own parameters (SimCLR's augmentation)."""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from hvlm.registry import MODELS
from ..layers.image_augment import (adjust_brightness, adjust_contrast,
                                    adjust_hue, adjust_saturation,
                                    gaussian_blur, hflip, resized_crop,
                                    sample_resized_crop, to_grayscale)


@MODELS.register_module()
class SimCLRViews:
    """SimCLR's view generator as a batch augment (run by
    :class:`ImageDataPreprocessor` in training, on ``[0, 1]`` floats).

    Input ``[B, C, H, W]``: two views of each image. Input
    ``[B, 2, C, H, W]`` (two frames from two clips of one video, say): the
    given pair is the positive pair and each is augmented. Output
    ``[B, 2, C, h, w]`` with ``(h, w) = crop_size``.

    Per view and per sample, in this order: a random resized crop of area
    ``scale`` and aspect ``ratio``; a horizontal flip with ``flip_prob``;
    with ``jitter_prob``, brightness, contrast and saturation factors
    uniform in ``[1 - s, 1 + s]`` and a hue shift uniform in ``[-h, h]``
    (applied in this fixed order); grey with ``grayscale_prob``; a Gaussian
    blur with ``blur_prob``, ``sigma`` uniform in ``blur_sigma``, kernel
    about a tenth of the crop side. The defaults are the seed's table
    (SimCLR's colour strength 1.0).

    Args:
        crop_size (int | tuple): Output ``(h, w)``.
        scale (tuple): Crop area as a fraction of the image.
        ratio (tuple): Crop aspect ratio range.
        flip_prob (float): Probability of a horizontal flip.
        jitter (tuple): ``(brightness, contrast, saturation, hue)``.
        jitter_prob (float): Probability of the colour jitter.
        grayscale_prob (float): Probability of grey.
        blur_prob (float): Probability of the blur.
        blur_sigma (tuple): Range of the blur's sigma in pixels.
    """

    def __init__(self,
                 crop_size,
                 scale: Sequence[float] = (0.2, 1.0),
                 ratio: Sequence[float] = (3 / 4, 4 / 3),
                 flip_prob: float = 0.5,
                 jitter: Sequence[float] = (0.8, 0.8, 0.8, 0.2),
                 jitter_prob: float = 0.8,
                 grayscale_prob: float = 0.2,
                 blur_prob: float = 0.5,
                 blur_sigma: Sequence[float] = (0.1, 2.0)) -> None:
        self.crop_size = (crop_size, crop_size) if isinstance(
            crop_size, int) else tuple(crop_size)
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f'scale={tuple(scale)} must satisfy '
                             '0 < low <= high <= 1')
        if len(jitter) != 4 or jitter[3] > 0.5:
            raise ValueError(f'jitter={tuple(jitter)} must be (brightness, '
                             'contrast, saturation, hue<=0.5)')
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.flip_prob, self.jitter = flip_prob, tuple(jitter)
        self.jitter_prob, self.grayscale_prob = jitter_prob, grayscale_prob
        self.blur_prob, self.blur_sigma = blur_prob, tuple(blur_sigma)
        side = min(self.crop_size)
        self.blur_kernel = max(3, int(side * 0.1) // 2 * 2 + 1)

    def sample_params(self, n: int, height: int, width: int,
                      generator: Optional[torch.Generator] = None
                      ) -> Dict[str, Tensor]:
        """One set of parameters per sample (tensors of length ``n``)."""
        def coin(p):
            return torch.rand(n, generator=generator) < p

        def uniform(low, high):
            return low + (high - low) * torch.rand(n, generator=generator)

        b, c, s, h = self.jitter
        jitter = coin(self.jitter_prob)
        ones = torch.ones(n)
        blur = coin(self.blur_prob)
        return dict(
            boxes=sample_resized_crop(n, height, width, self.scale,
                                      self.ratio, generator),
            flip=coin(self.flip_prob),
            brightness=torch.where(jitter, uniform(max(0, 1 - b), 1 + b),
                                   ones),
            contrast=torch.where(jitter, uniform(max(0, 1 - c), 1 + c),
                                 ones),
            saturation=torch.where(jitter, uniform(max(0, 1 - s), 1 + s),
                                   ones),
            hue=torch.where(jitter, uniform(-h, h), torch.zeros(n)),
            grayscale=coin(self.grayscale_prob),
            sigma=torch.where(blur, uniform(*self.blur_sigma),
                              torch.zeros(n)))

    def apply(self, x: Tensor, params: Dict[str, Tensor]) -> Tensor:
        """Augment ``x`` ``[B, C, H, W]`` in [0, 1] with ``params``."""
        x = resized_crop(x, params['boxes'], self.crop_size)
        x = hflip(x, params['flip'])
        x = adjust_brightness(x, params['brightness'])
        x = adjust_contrast(x, params['contrast'])
        x = adjust_saturation(x, params['saturation'])
        x = adjust_hue(x, params['hue'])
        x = to_grayscale(x, params['grayscale'])
        return gaussian_blur(x, params['sigma'], self.blur_kernel)

    def __call__(self, inputs: Tensor,
                 data_samples: List) -> Tuple[Tensor, List]:
        if inputs.dim() == 4:
            views = (inputs, inputs)
        elif inputs.dim() == 5 and inputs.shape[1] == 2:
            views = inputs.unbind(1)
        else:
            raise ValueError('SimCLRViews expects images [B, C, H, W] or '
                             f'pairs [B, 2, C, H, W], got {tuple(inputs.shape)}')
        out = []
        for view in views:
            params = self.sample_params(view.shape[0], *view.shape[-2:])
            out.append(self.apply(view, params))
        return torch.stack(out, 1), data_samples  # [B, 2, C, h, w]

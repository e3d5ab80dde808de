"""Colour jitter drawn once per video, applied to all its frames."""
from typing import Dict

import numpy as np
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS

# ITU-R BT.601 luma weights, as torchvision's grayscale
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@TRANSFORMS.register_module()
class ColorJitter(BaseTransform):
    """Random brightness, contrast and saturation, one draw per video.

    Each factor is drawn uniformly from ``[1 - x, 1 + x]`` (numpy's global
    generator, which SeededSampler seeds per sample) and the three are
    applied in that order to every frame alike, so the video stays
    temporally consistent:

    - brightness: ``img * b``;
    - contrast: blend with the frame's mean grey level, ``m + c (img - m)``;
    - saturation: blend with the pixel's grey value, ``g + s (img - g)``.

    Values are clipped to 0..255 and kept uint8.

    Required keys: ``imgs`` ``[N, H, W, 3]`` (RGB).
    Modified keys: ``imgs``. Added keys: ``color_jitter`` (the factors).

    Args:
        brightness (float): Brightness range ``x``.
        contrast (float): Contrast range ``x``.
        saturation (float): Saturation range ``x``.
    """

    def __init__(self, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4) -> None:
        for name, x in (('brightness', brightness), ('contrast', contrast),
                        ('saturation', saturation)):
            if not 0 <= x < 1:
                raise ValueError(f'ColorJitter: {name}={x} must be in [0, 1)')
        self.ranges = (brightness, contrast, saturation)

    def transform(self, results: Dict) -> Dict:
        b, c, s = (1 + x * (2 * np.random.rand() - 1) for x in self.ranges)
        imgs = np.asarray(results['imgs']).astype(np.float32)  # [N,H,W,3]
        imgs = imgs * b
        grey = imgs @ LUMA  # [N, H, W]
        mean = grey.mean(axis=(1, 2), keepdims=True)[..., None]
        imgs = mean + c * (imgs - mean)
        grey = (imgs @ LUMA)[..., None]
        imgs = grey + s * (imgs - grey)
        results['imgs'] = np.clip(np.rint(imgs), 0, 255).astype(np.uint8)
        results['color_jitter'] = (float(b), float(c), float(s))
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ranges={self.ranges})'

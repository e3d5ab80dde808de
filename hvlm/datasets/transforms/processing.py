"""Geometric transforms on decoded clips.

Every transform here works on ``results['imgs']``, a uint8 array
``[N, H, W, C]`` (N = ``num_clips * clip_len`` frames), applies the same
geometry to every frame so motion is preserved, and updates ``img_shape``.
"""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS

_INTERPOLATIONS = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
}
# cv2.resize accepts at most this many channels (OpenCV 4.x allows 512).
_CV2_MAX_CHANNELS = 128


def resize_frames(imgs: np.ndarray,
                  size: Tuple[int, int],
                  interpolation: str = 'bilinear') -> np.ndarray:
    """Resize every frame of ``[N, H, W, C]`` to ``size=(w, h)``.

    The frames are laid side by side as channels of one image
    (``[H, W, N*C]``), so cv2 resizes up to 42 RGB frames in one call.
    """
    n, h, w, c = imgs.shape
    out_w, out_h = size
    if (out_h, out_w) == (h, w):
        return imgs
    flag = _INTERPOLATIONS[interpolation]
    per_call = max(_CV2_MAX_CHANNELS // c, 1)
    stacked = imgs.transpose(1, 2, 0, 3).reshape(h, w, n * c)  # [H, W, N*C]
    parts = []
    for s in range(0, n * c, per_call * c):
        part = cv2.resize(
            np.ascontiguousarray(stacked[..., s:s + per_call * c]),
            (out_w, out_h),
            interpolation=flag)
        parts.append(part.reshape(out_h, out_w, -1))  # cv2 drops C=1
    out = np.concatenate(parts, axis=2)  # [h, w, N*C]
    return np.ascontiguousarray(
        out.reshape(out_h, out_w, n, c).transpose(2, 0, 1, 3))


@TRANSFORMS.register_module()
class Resize(BaseTransform):
    """Resize all frames.

    ``scale`` follows the ``(w, h)`` order:

    - ``keep_ratio=True`` and one side ``-1`` (e.g. ``(-1, 64)``): the short
      side becomes the other number, the aspect ratio is kept.
    - ``keep_ratio=True`` and both positive: the largest size whose long side
      fits ``max(scale)`` and short side fits ``min(scale)``.
    - ``keep_ratio=False``: exactly ``(w, h) = scale``.

    Required keys: ``imgs`` ``[N, H, W, C]``.
    Modified keys: ``imgs`` ``[N, h, w, C]``, ``img_shape`` ``(h, w)``.
    Added keys: ``scale_factor`` ``(w / W, h / H)``, ``keep_ratio``.
    """

    def __init__(self,
                 scale: Union[int, Sequence[int]],
                 keep_ratio: bool = True,
                 interpolation: str = 'bilinear') -> None:
        if isinstance(scale, int):
            scale = (-1, scale)
        scale = tuple(int(s) for s in scale)
        if len(scale) != 2 or max(scale) <= 0 or \
                any(s <= 0 and s != -1 for s in scale):
            raise ValueError(f'Resize: scale={scale} must be (w, h) with '
                             'positive sizes, or one of them -1')
        if not keep_ratio and min(scale) <= 0:
            raise ValueError(f'Resize: scale={scale} with keep_ratio=False '
                             'needs both sizes positive')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'Resize: interpolation={interpolation!r} is not '
                             f'one of {sorted(_INTERPOLATIONS)}')
        self.scale = scale
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation

    def _target(self, h: int, w: int) -> Tuple[int, int]:
        """Output ``(w, h)`` for an ``h x w`` input."""
        if not self.keep_ratio:
            return self.scale
        if min(self.scale) == -1:
            factor = max(self.scale) / min(h, w)
        else:
            factor = min(
                max(self.scale) / max(h, w),
                min(self.scale) / min(h, w))
        return max(int(w * factor + 0.5), 1), max(int(h * factor + 0.5), 1)

    def transform(self, results: Dict) -> Dict:
        imgs = np.asarray(results['imgs'])
        h, w = imgs.shape[1:3]
        out_w, out_h = self._target(h, w)
        results['imgs'] = resize_frames(imgs, (out_w, out_h),
                                        self.interpolation)
        results['img_shape'] = (out_h, out_w)
        results['scale_factor'] = (out_w / w, out_h / h)
        results['keep_ratio'] = self.keep_ratio
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'keep_ratio={self.keep_ratio}, '
                f'interpolation={self.interpolation!r})')


def _crop(results: Dict, x: int, y: int, w: int, h: int) -> Dict:
    """Crop ``imgs`` to the box ``(x, y, w, h)`` and record it."""
    results['imgs'] = np.ascontiguousarray(
        np.asarray(results['imgs'])[:, y:y + h, x:x + w])  # [N, h, w, C]
    results['img_shape'] = (h, w)
    results['crop_bbox'] = np.array([x, y, x + w, y + h])
    return results


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random box of random area and aspect ratio (same for all
    frames). Follow it with ``Resize(..., keep_ratio=False)`` for a fixed
    output size.

    Required keys: ``imgs`` ``[N, H, W, C]``.
    Modified keys: ``imgs`` ``[N, h, w, C]``, ``img_shape``.
    Added keys: ``crop_bbox`` ``[x1, y1, x2, y2]``.

    Args:
        area_range (tuple): Crop area as a fraction of the frame's.
        aspect_ratio_range (tuple): Crop width / height, sampled
            log-uniformly.
        max_attempts (int): Samples tried before falling back to the largest
            centred crop within ``aspect_ratio_range``.
    """

    def __init__(self,
                 area_range: Tuple[float, float] = (0.6, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3 / 4, 4 / 3),
                 max_attempts: int = 10) -> None:
        if not 0 < area_range[0] <= area_range[1] <= 1:
            raise ValueError(f'RandomResizedCrop: area_range={area_range} '
                             'must satisfy 0 < min <= max <= 1')
        if not 0 < aspect_ratio_range[0] <= aspect_ratio_range[1]:
            raise ValueError(
                f'RandomResizedCrop: aspect_ratio_range={aspect_ratio_range} '
                'must satisfy 0 < min <= max')
        self.area_range = tuple(area_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.max_attempts = max_attempts

    def _box(self, h: int, w: int) -> Tuple[int, int, int, int]:
        log_lo, log_hi = (math.log(r) for r in self.aspect_ratio_range)
        for _ in range(self.max_attempts):
            area = np.random.uniform(*self.area_range) * h * w
            ratio = math.exp(np.random.uniform(log_lo, log_hi))
            cw = int(round(math.sqrt(area * ratio)))
            ch = int(round(math.sqrt(area / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                x = np.random.randint(0, w - cw + 1)
                y = np.random.randint(0, h - ch + 1)
                return int(x), int(y), cw, ch
        ratio = min(
            max(w / h, self.aspect_ratio_range[0]), self.aspect_ratio_range[1])
        cw, ch = (w, int(round(w / ratio))) if w / h < ratio else (int(
            round(h * ratio)), h)
        cw, ch = min(cw, w), min(ch, h)
        return (w - cw) // 2, (h - ch) // 2, cw, ch

    def transform(self, results: Dict) -> Dict:
        h, w = np.asarray(results['imgs']).shape[1:3]
        return _crop(results, *self._box(h, w))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(area_range={self.area_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range})')


@TRANSFORMS.register_module()
class CenterCrop(BaseTransform):
    """Crop the centre ``crop_size`` (int, or ``(w, h)``) of every frame.

    Required keys: ``imgs`` ``[N, H, W, C]`` with ``H >= h`` and ``W >= w``.
    Modified keys: ``imgs`` ``[N, h, w, C]``, ``img_shape``.
    Added keys: ``crop_bbox`` ``[x1, y1, x2, y2]``.
    """

    def __init__(self, crop_size: Union[int, Tuple[int, int]]) -> None:
        if isinstance(crop_size, int):
            crop_size = (crop_size, crop_size)
        if len(crop_size) != 2 or min(crop_size) <= 0:
            raise ValueError(f'CenterCrop: crop_size={crop_size} must be a '
                             'positive int or (w, h)')
        self.crop_size = tuple(int(s) for s in crop_size)

    def transform(self, results: Dict) -> Dict:
        h, w = np.asarray(results['imgs']).shape[1:3]
        cw, ch = self.crop_size
        if cw > w or ch > h:
            raise ValueError(
                f'CenterCrop: crop_size (w, h)={self.crop_size} is larger '
                f'than the frames (w, h)=({w}, {h}) of '
                f'{results.get("filename", "<unknown>")}; resize first')
        return _crop(results, (w - cw) // 2, (h - ch) // 2, cw, ch)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(crop_size={self.crop_size})'


@TRANSFORMS.register_module()
class Flip(BaseTransform):
    """Mirror all frames left-right with probability ``flip_ratio``.

    Left-right mirroring changes the meaning of direction-dependent actions;
    ``flip_label_map`` renames them (and updates ``label_id`` from
    ``results['classes']``) in ``actions`` when a clip is flipped. The map
    is made symmetric: ``dict(roll_left='roll_right')`` also maps
    ``roll_right`` to ``roll_left``. QA answers and captions are not edited,
    so do not flip clips for those tasks when their text names a direction.

    Required keys: ``imgs`` ``[N, H, W, C]``; ``actions`` and ``classes``
    when ``flip_label_map`` is set.
    Modified keys: ``imgs``, ``actions``.
    Added keys: ``flip`` (bool).
    """

    def __init__(self,
                 flip_ratio: float = 0.5,
                 flip_label_map: Optional[Dict[str, str]] = None) -> None:
        if not 0 <= flip_ratio <= 1:
            raise ValueError(
                f'Flip: flip_ratio={flip_ratio} must be in [0, 1]')
        self.flip_ratio = flip_ratio
        mapping = dict(flip_label_map or {})
        for src, dst in list(mapping.items()):
            mapping.setdefault(dst, src)
        self.flip_label_map = mapping

    def transform(self, results: Dict) -> Dict:
        flip = bool(np.random.rand() < self.flip_ratio)
        results['flip'] = flip
        if not flip:
            return results
        results['imgs'] = np.ascontiguousarray(
            np.asarray(results['imgs'])[:, :, ::-1])
        if self.flip_label_map and results.get('actions'):
            classes = list(results.get('classes', ()))
            actions = []
            for action in results['actions']:
                label = self.flip_label_map.get(action['label'],
                                                action['label'])
                label_id = classes.index(label) if label in classes else -1
                actions.append(dict(action, label=label, label_id=label_id))
            results['actions'] = actions
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(flip_ratio={self.flip_ratio}, '
                f'flip_label_map={self.flip_label_map})')

"""A small, deterministic image-classification set generated on first use.

Each image shows one filled shape over a noisy background. **The class is
the shape alone**::

    cross  disc  ring  square  star  triangle

Everything else is a nuisance drawn per image: the object's colour and
the background's colour (at least 80 apart in RGB distance, so the object
is visible), the background's noise and linear shading, the object's size
(radius 25-40% of the image side), position and rotation. No
class-specific colour, texture or layout exists, so the class survives
crops that keep the object, flips, colour jitter and grey: the invariances
SimCLR's augmentations teach. Shapes are drawn at four times the size and
area-downsampled (anti-aliased), so they stay legible at 32 px.

Layout written by :func:`generate_demo_images` (the one
:class:`ImageFolderDataset` reads)::

    root/<split>/<class>/<split>_<class>_<index>.png
        (split: training | validation | test)
"""
import os
import os.path as osp
from typing import Dict, Optional

import cv2
import numpy as np

from .demo_cache import ensure_generated

__all__ = ['DEMO_IMAGE_CLASSES', 'generate_demo_images',
           'ensure_demo_images']

# Bump whenever the output for given arguments changes.
# 2: classes are shapes only (was shape x texture), anti-aliased, shading.
IMAGE_GENERATOR_VERSION = 2

DEMO_IMAGE_CLASSES = ('cross', 'disc', 'ring', 'square', 'star', 'triangle')
_SPLIT_INDEX = dict(training=0, validation=1, test=2)
_SUPERSAMPLE = 4


def _polygon(cx: float, cy: float, radii: np.ndarray,
             angle: float) -> np.ndarray:
    """Vertices ``[n, 2]`` int32 at ``radii[i]`` from the centre, evenly
    spaced in angle from ``angle``."""
    t = angle + np.arange(len(radii)) * 2 * np.pi / len(radii)
    pts = np.stack([cx + radii * np.cos(t), cy + radii * np.sin(t)], 1)
    return pts.round().astype(np.int32)


def _shape_mask(shape: str, big: int, cx: float, cy: float, r: float,
                angle: float) -> np.ndarray:
    """``[big, big]`` uint8 mask (0/1) of ``shape`` of radius ``r``."""
    mask = np.zeros((big, big), np.uint8)
    c = (int(round(cx)), int(round(cy)))
    if shape == 'disc':
        cv2.circle(mask, c, int(r), 1, -1)
    elif shape == 'ring':
        cv2.circle(mask, c, int(r), 1, -1)
        cv2.circle(mask, c, int(r * 0.55), 0, -1)
    elif shape == 'square':
        cv2.fillPoly(mask, [_polygon(cx, cy, np.full(4, r), angle)], 1)
    elif shape == 'triangle':
        cv2.fillPoly(mask, [_polygon(cx, cy, np.full(3, r), angle)], 1)
    elif shape == 'star':  # five points, inner radius 0.45 r
        radii = np.tile([r, 0.45 * r], 5)
        cv2.fillPoly(mask, [_polygon(cx, cy, radii, angle)], 1)
    else:  # cross: two bars of width 0.5 r
        half = 0.25 * r
        for a in (angle, angle + np.pi / 2):
            d = np.array([np.cos(a), np.sin(a)])
            n = np.array([-d[1], d[0]])
            corners = np.stack([
                np.array([cx, cy]) + sx * r * d + sy * half * n
                for sx, sy in ((1, 1), (1, -1), (-1, -1), (-1, 1))
            ])
            cv2.fillPoly(mask, [corners.round().astype(np.int32)], 1)
    return mask


def render_image(seed: int, split: str, label: str, index: int,
                 size: int = 32) -> np.ndarray:
    """One RGB image ``[size, size, 3]`` uint8 of class ``label``."""
    rng = np.random.default_rng(
        [seed, _SPLIT_INDEX[split], DEMO_IMAGE_CLASSES.index(label), index])
    background = rng.integers(0, 256, 3).astype(np.float64)
    colour = rng.integers(0, 256, 3).astype(np.float64)
    while np.linalg.norm(colour - background) < 80:
        colour = rng.integers(0, 256, 3).astype(np.float64)
    big = size * _SUPERSAMPLE
    r = rng.uniform(0.25, 0.4) * big
    cx, cy = rng.uniform(r, big - r, 2)
    angle = rng.uniform(0, 2 * np.pi)
    mask = _shape_mask(label, big, cx, cy, r, angle)
    cover = cv2.resize(mask.astype(np.float32), (size, size),
                       interpolation=cv2.INTER_AREA)[..., None]
    # background: linear shading of random direction plus pixel noise
    yy, xx = np.mgrid[:size, :size] / max(size - 1, 1) - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    shade = rng.uniform(-40, 40) * (np.cos(theta) * xx + np.sin(theta) * yy)
    img = (background + shade[..., None]) * (1 - cover) + colour * cover
    img = img + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).round().astype(np.uint8)


def generate_demo_images(root: str,
                         seed: int = 0,
                         images_per_class: Optional[Dict[str, int]] = None,
                         size: int = 32) -> str:
    """Write the demo images under ``root`` (see the module docstring).

    Args:
        root: Output directory.
        seed: Seed of everything random.
        images_per_class: ``{split: count}``; default training 500,
            validation 50, test 100.
        size: Side of the square images.
    """
    counts = images_per_class or dict(training=500, validation=50, test=100)
    for split, count in counts.items():
        if split not in _SPLIT_INDEX:
            raise ValueError(f'images_per_class has split {split!r}; '
                             f'expected some of {tuple(_SPLIT_INDEX)}')
        for label in DEMO_IMAGE_CLASSES:
            folder = osp.join(root, split, label)
            os.makedirs(folder, exist_ok=True)
            for i in range(count):
                img = render_image(seed, split, label, i, size)
                cv2.imwrite(
                    osp.join(folder, f'{split}_{label}_{i:04d}.png'),
                    cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def ensure_demo_images(root: str, **kwargs) -> str:
    """Generate the demo images at ``root`` unless an identical copy is
    there (``root/.complete`` records version and arguments). Written to a
    temporary directory and renamed into place under an ``fcntl`` lock, so
    concurrent processes generate once and readers never see half a set;
    a directory not written here is never overwritten."""
    return ensure_generated(root, IMAGE_GENERATOR_VERSION, kwargs,
                            lambda tmp: generate_demo_images(tmp, **kwargs),
                            'ensure_demo_images')

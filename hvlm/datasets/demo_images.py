"""A small, deterministic image-classification set generated on first use.

Each image shows one object over a noisy background of random colour. The
class is the pair (shape, texture) of the object; its colour, size,
position and rotation are random, so a model must look at shape and
texture, not colour, and few labels are enough for a pretrained model::

    disc_plain      disc, flat colour       square_plain     square, flat
    disc_stripes    disc, stripes           square_dots      square, dots
    triangle_plain  triangle, flat          triangle_checker triangle, checker

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
IMAGE_GENERATOR_VERSION = 1

DEMO_IMAGE_CLASSES = ('disc_plain', 'disc_stripes', 'square_plain',
                      'square_dots', 'triangle_plain', 'triangle_checker')
_SPLIT_INDEX = dict(training=0, validation=1, test=2)


def _texture(rng: np.random.Generator, kind: str, size: int,
             colour: np.ndarray) -> np.ndarray:
    """``[size, size, 3]`` uint8 fill of the object."""
    yy, xx = np.mgrid[:size, :size]
    other = 255 - colour
    if kind == 'plain':
        mask = np.zeros((size, size), bool)
    elif kind == 'stripes':
        period = rng.integers(4, 7)
        mask = ((xx + yy * rng.uniform(-0.5, 0.5)) // (period / 2)) % 2 == 0
    elif kind == 'dots':
        period = rng.integers(5, 8)
        mask = ((xx % period - period / 2)**2 +
                (yy % period - period / 2)**2) < (period / 3.2)**2
    else:  # checker
        period = rng.integers(4, 7)
        mask = ((xx // period) + (yy // period)) % 2 == 0
    out = np.where(mask[..., None], other, colour)
    return out.astype(np.uint8)


def render_image(seed: int, split: str, label: str, index: int,
                 size: int = 64) -> np.ndarray:
    """One RGB image ``[size, size, 3]`` uint8 of class ``label``."""
    rng = np.random.default_rng(
        [seed, _SPLIT_INDEX[split], DEMO_IMAGE_CLASSES.index(label), index])
    shape, kind = label.split('_')
    base = rng.integers(0, 256, 3)
    img = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0,
                  255).astype(np.uint8)
    colour = rng.integers(30, 226, 3).astype(np.int64)
    fill = _texture(rng, kind, size, colour)
    mask = np.zeros((size, size), np.uint8)
    r = rng.uniform(0.22, 0.36) * size
    cx, cy = rng.uniform(r, size - r, 2)
    angle = rng.uniform(0, 2 * np.pi)
    if shape == 'disc':
        cv2.circle(mask, (int(cx), int(cy)), int(r), 1, -1)
    else:
        corners = 4 if shape == 'square' else 3
        t = angle + np.arange(corners) * 2 * np.pi / corners
        pts = np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)
        cv2.fillPoly(mask, [pts.round().astype(np.int32)], 1)
    img = np.where(mask[..., None] > 0, fill, img)
    return img


def generate_demo_images(root: str,
                         seed: int = 0,
                         images_per_class: Optional[Dict[str, int]] = None,
                         size: int = 64) -> str:
    """Write the demo images under ``root`` (see the module docstring).

    Args:
        root: Output directory.
        seed: Seed of everything random.
        images_per_class: ``{split: count}``; default training 100,
            validation 30, test 30.
        size: Side of the square images.
    """
    counts = images_per_class or dict(training=100, validation=30, test=30)
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

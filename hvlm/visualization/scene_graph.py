"""Draw one frame's scene graph: its boxes, and its triplets as text."""
from typing import Dict, Tuple

import cv2
import numpy as np

__all__ = ['draw_scene_graph', 'box_colour']

LINE_H = 12  # pixels per text line of the panel under the frame
FONT = cv2.FONT_HERSHEY_SIMPLEX


def box_colour(label: str) -> Tuple[int, int, int]:
    """A fixed, saturated RGB colour per class name (person: green)."""
    if label == 'person':
        return (0, 255, 0)
    h = sum((i + 1) * ord(c) for i, c in enumerate(label)) % 180
    hsv = np.uint8([[[h, 255, 255]]])
    return tuple(int(v) for v in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def draw_scene_graph(img: np.ndarray, frame: Dict,
                     max_lines: int = 10,
                     thickness: int = 1) -> np.ndarray:
    """The frame (RGB ``[H, W, 3]`` uint8, original pixels) with every
    object box outlined in its class colour (:func:`box_colour`) and named,
    over a panel listing the best ``max_lines`` triplets
    ``subject -predicate-> object score``.

    Args:
        img: The frame; not modified.
        frame: One entry of :func:`inference_scene_graph`'s ``frames``.

    Returns:
        np.ndarray: RGB ``[H + panel, W, 3]`` uint8.
    """
    H, W = img.shape[:2]
    lines = [f"{t['subject']} -{t['predicate']}-> {t['object']} "
             f"{t['score']:.2f}" for t in frame['triplets'][:max_lines]]
    canvas = np.zeros((H + LINE_H * len(lines) + 4, W, 3), np.uint8)
    canvas[:H] = img
    for obj in frame['objects']:
        x1, y1, x2, y2 = (int(round(v)) for v in obj['box'])
        colour = box_colour(obj['label'])
        cv2.rectangle(canvas[:H], (x1, y1), (x2, y2), colour, thickness)
        cv2.putText(canvas[:H], obj['label'], (x1 + 2, max(y1 + 9, 9)),
                    FONT, 0.3, colour, 1, cv2.LINE_AA)
    for i, text in enumerate(lines):
        cv2.putText(canvas, text, (2, H + LINE_H * (i + 1)), FONT, 0.3,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return canvas

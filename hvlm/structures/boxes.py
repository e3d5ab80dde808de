"""Box overlap with the +1 pixel convention of the scene-graph references.

Neural-motifs' ``bbox_overlaps``, used by STTran both to assign detections
to the ground truth and to evaluate, counts a box ``[x1, x2]`` as
``x2 - x1 + 1`` pixels wide. Training and evaluation share this one
definition here.
"""
import numpy as np

__all__ = ['box_iou_plus1']


def box_iou_plus1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``[N, M]`` of xyxy boxes ``a [N, 4]`` and ``b [M, 4]``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt + 1, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)

"""Pipeline of ActionGenomeDataset: read a video's frames, pack the graph."""
from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS

__all__ = ['LoadSceneGraphFrames', 'PackSceneGraphInputs']


@TRANSFORMS.register_module()
class LoadSceneGraphFrames(BaseTransform):
    """Read every kept frame of a video (PNG/JPEG) and resize it.

    Boxes stay in the original pixels (the evaluator's frame); the model
    scales them by ``scale_factor`` to reach its feature maps.

    Required keys: ``frame_paths``. Added: ``imgs`` uint8 ``[T, H', W', 3]``
    RGB, ``scale_factor`` ``(sx, sy)`` = new size / original size, and
    ``img_shape`` ``(H, W)`` of the original frames when absent.

    Args:
        scale (tuple): ``(H', W')`` every frame is resized to.
    """

    def __init__(self, scale: Sequence[int] = (96, 128)) -> None:
        self.scale = tuple(int(v) for v in scale)

    def transform(self, results: Dict) -> Dict:
        frames, shape = [], None
        for path in results['frame_paths']:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f'cannot read frame {path}')
            shape = img.shape[:2]
            img = cv2.resize(img, (self.scale[1], self.scale[0]),
                             interpolation=cv2.INTER_AREA)
            frames.append(img[..., ::-1])  # BGR -> RGB
        if results.get('img_shape') is None:
            results['img_shape'] = shape
        H, W = results['img_shape']
        results['imgs'] = np.stack(frames)  # [T, H', W', 3]
        results['scale_factor'] = (self.scale[1] / W, self.scale[0] / H)
        return results


@TRANSFORMS.register_module()
class PackSceneGraphInputs(BaseTransform):
    """Pack frames ``inputs`` uint8 ``[T, 3, H', W']`` and a sample dict.

    The sample is a plain dict of tensors and metadata (``video_id``,
    ``frame_names``, ``img_shape``, ``scale_factor``, ``person_boxes``
    ``[T, 4]``, ``obj_frames`` ``[M]``, ``obj_boxes`` ``[M, 4]``,
    ``obj_labels`` ``[M]``, ``attention`` ``[M]``, ``spatial`` ``[M, 6]``,
    ``contacting`` ``[M, 17]``; with SGDET detections also ``det_frames``
    ``[D]``, ``det_boxes`` ``[D, 4]``, ``det_labels`` ``[D]``,
    ``det_scores`` ``[D]`` and ``det_features`` ``[D, C]`` if present),
    the contract of the scene-graph models and :class:`SceneGraphRecall`.
    """

    ARRAYS = ('person_boxes', 'obj_frames', 'obj_boxes', 'obj_labels',
              'attention', 'spatial', 'contacting')
    DETECTIONS = ('det_frames', 'det_boxes', 'det_labels', 'det_scores',
                  'det_features')
    META = ('video_id', 'frame_names', 'img_shape', 'scale_factor')

    def transform(self, results: Dict) -> Dict:
        imgs = np.ascontiguousarray(results['imgs'].transpose(0, 3, 1, 2))
        sample = {k: results[k] for k in self.META if k in results}
        for k in self.ARRAYS:
            sample[k] = torch.from_numpy(np.asarray(results[k]))
        for k in self.DETECTIONS:
            if k in results:
                sample[k] = torch.from_numpy(np.asarray(results[k]))
        return dict(inputs=torch.from_numpy(imgs), data_samples=sample)

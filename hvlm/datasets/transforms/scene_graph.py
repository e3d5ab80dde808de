"""Pipeline of ActionGenomeDataset: read a video's frames, pack the graph."""
import os.path as osp
from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS
from ..exceptions import VideoReadError
from .loading import _DECORD_ERRORS, _first_line

__all__ = ['LoadSceneGraphFrames', 'PackSceneGraphInputs']


@TRANSFORMS.register_module()
class LoadSceneGraphFrames(BaseTransform):
    """Read every kept frame of a video (PNG/JPEG files, or decoded from
    the video with decord) and resize it.

    Boxes stay in the original pixels (the evaluator's frame); the model
    scales them by ``scale_factor`` to reach its feature maps. Decoded
    frames are resized exactly as read ones (``cv2.INTER_AREA``), so the two
    sources differ by the video codec's loss only. The decord reader is
    opened here, in the worker, and dropped after the frames are read.

    Required keys: ``frame_paths``, or ``video_path`` and
    ``frame_indices`` (decoded when present). Added: ``imgs`` uint8
    ``[T, H', W', 3]`` RGB, ``scale_factor`` ``(sx, sy)`` = new size /
    original size, and ``img_shape`` ``(H, W)`` of the original frames
    when absent.

    Args:
        scale (tuple): ``(H', W')`` every frame is resized to.
    """

    def __init__(self, scale: Sequence[int] = (96, 128)) -> None:
        self.scale = tuple(int(v) for v in scale)

    def transform(self, results: Dict) -> Dict:
        if results.get('video_path'):
            rgb = self._decode(results['video_path'],
                               results['frame_indices'])
        else:
            rgb = []
            for path in results['frame_paths']:
                img = cv2.imread(path, cv2.IMREAD_COLOR)
                if img is None:
                    raise FileNotFoundError(f'cannot read frame {path}')
                rgb.append(img[..., ::-1])  # BGR -> RGB
        frames, shape = [], None
        for img in rgb:
            shape = img.shape[:2]
            frames.append(cv2.resize(img, (self.scale[1], self.scale[0]),
                                     interpolation=cv2.INTER_AREA))
        if results.get('img_shape') is None:
            results['img_shape'] = shape
        H, W = results['img_shape']
        results['imgs'] = np.stack(frames)  # [T, H', W', 3]
        results['scale_factor'] = (self.scale[1] / W, self.scale[0] / H)
        return results

    @staticmethod
    def _decode(path: str, indices: Sequence[int]) -> np.ndarray:
        """Frames ``indices`` of the video at ``path``, RGB ``[T, H, W, 3]``.
        """
        if not osp.isfile(path):
            raise VideoReadError(path, 'file does not exist')
        import decord  # in the worker: a reader must not cross a fork
        try:
            reader = decord.VideoReader(path, num_threads=1)
            total = len(reader)
            beyond = [i for i in indices if not 0 <= i < total]
            if beyond:
                raise VideoReadError(
                    path, f'has {total} frames; the annotations ask for '
                    f'frames {beyond[:5]}')
            return reader.get_batch(list(indices)).asnumpy()
        except _DECORD_ERRORS as e:
            if isinstance(e, VideoReadError):
                raise
            raise VideoReadError(path, f'decord cannot decode it '
                                 f'({type(e).__name__}: {_first_line(e)})'
                                 ) from None


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

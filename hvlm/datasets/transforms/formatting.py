"""Arrange the frames for the model and pack the ground truth."""
from typing import Dict, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform

from hvlm.registry import TRANSFORMS
from hvlm.structures import VideoDataSample
from ..annotations import segment_at_times


@TRANSFORMS.register_module()
class FormatShape(BaseTransform):
    """Reshape the frames into clips.

    Required keys: ``imgs`` ``[num_clips * clip_len, H, W, C]``,
    ``num_clips``, ``clip_len``.
    Modified keys: ``imgs``: ``[num_clips, C, clip_len, H, W]`` for
    ``'NCTHW'``, ``[num_clips, clip_len, C, H, W]`` for ``'NTCHW'``.
    Added keys: ``input_shape``.
    """

    _ORDERS = {'NCTHW': (0, 4, 1, 2, 3), 'NTCHW': (0, 1, 4, 2, 3)}

    def __init__(self, input_format: str = 'NCTHW') -> None:
        if input_format not in self._ORDERS:
            raise ValueError(f'FormatShape: input_format={input_format!r} '
                             f'is not one of {sorted(self._ORDERS)}')
        self.input_format = input_format

    def transform(self, results: Dict) -> Dict:
        imgs = np.asarray(results['imgs'])
        n, t = results['num_clips'], results['clip_len']
        if imgs.shape[0] != n * t:
            raise ValueError(
                f'FormatShape: {imgs.shape[0]} frames of '
                f'{results.get("filename", "<unknown>")} do not make '
                f'num_clips={n} x clip_len={t}')
        imgs = imgs.reshape((n, t) + imgs.shape[1:])  # [N, T, H, W, C]
        imgs = np.ascontiguousarray(
            imgs.transpose(self._ORDERS[self.input_format]))
        results['imgs'] = imgs
        results['input_shape'] = imgs.shape
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(input_format={self.input_format!r})'


@TRANSFORMS.register_module()
class PackVideoInputs(BaseTransform):
    """Pack the clip tensor and a :class:`VideoDataSample`.

    Required keys: ``imgs`` (uint8, e.g. ``[num_clips, C, T, H, W]``),
    ``frame_times``, ``tasks``, and whatever ``meta_keys`` are present;
    ``actions`` / ``qa_pairs`` / ``captions`` for the annotated tasks.

    Returns ``dict(inputs=torch.uint8 tensor, data_samples=VideoDataSample)``
    where the sample holds (see VideoDataSample for the contract):

    - metainfo: ``meta_keys`` found in ``results`` plus ``tasks`` (sorted).
    - ``gt_frame_labels`` ``LongTensor [num_clips * clip_len]``: the
      ``label_id`` of the action covering each frame time, ``-1`` elsewhere
      (always set; all ``-1`` without action annotation).
    - ``gt_segments`` ``FloatTensor [K, 2]``, ``gt_segment_labels``
      ``LongTensor [K]`` (action_detection only).
    - ``gt_qa`` (video_qa only), ``gt_captions`` (video_captioning only).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo.
    """

    def __init__(
        self,
        meta_keys: Sequence[str] = ('video_id', 'filename', 'domain',
                                    'domain_id', 'avg_fps', 'total_frames',
                                    'frame_inds', 'frame_times', 'img_shape',
                                    'feature_encoder')
    ) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        imgs = np.asarray(results['imgs'])
        inputs = torch.from_numpy(np.ascontiguousarray(imgs))
        sample = VideoDataSample()
        meta = {k: results[k] for k in self.meta_keys if k in results}
        tasks = set(results.get('tasks', ()))
        meta['tasks'] = sorted(tasks)
        sample.set_metainfo(meta)

        times = np.asarray(results['frame_times'], dtype=np.float64)
        actions = results.get('actions') or []
        frame_labels = np.full(times.shape, -1, dtype=np.int64)  # [N*T]
        if 'action_detection' in tasks and actions:
            owner = segment_at_times(times, [a['start'] for a in actions],
                                     [a['end'] for a in actions])
            ids = np.array([a['label_id'] for a in actions], dtype=np.int64)
            frame_labels = np.where(owner >= 0, ids[owner], -1)
        sample.gt_frame_labels = torch.from_numpy(frame_labels)
        if 'action_detection' in tasks:
            sample.gt_segments = torch.tensor([[a['start'], a['end']]
                                               for a in actions],
                                              dtype=torch.float32).reshape(
                                                  -1, 2)  # [K, 2]
            sample.gt_segment_labels = torch.tensor(
                [a['label_id'] for a in actions], dtype=torch.long)  # [K]
        if 'video_qa' in tasks:
            sample.gt_qa = [dict(q) for q in results.get('qa_pairs', [])]
        if 'video_captioning' in tasks:
            sample.gt_captions = [dict(c) for c in results.get('captions', [])]
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'

"""Pipeline steps of ImageFolderDataset: read, resize, pack."""
import os
import os.path as osp
from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import BaseDataElement

from hvlm.registry import TRANSFORMS
from ..exceptions import ImageReadError


@TRANSFORMS.register_module()
class LoadImageFile(BaseTransform):
    """Read ``filename`` into ``img`` (uint8 RGB ``[H, W, 3]``).

    A missing, empty or undecodable file raises :class:`ImageReadError`
    naming the file; the dataset then skips and counts it (the file is
    never touched).
    """

    def transform(self, results: Dict) -> Dict:
        filename = results['filename']
        if not osp.isfile(filename):
            raise ImageReadError(filename, 'file does not exist')
        size = os.path.getsize(filename)
        if size == 0:
            raise ImageReadError(filename, 'file is empty (0 bytes)')
        img = cv2.imread(filename, cv2.IMREAD_COLOR)
        if img is None:
            raise ImageReadError(
                filename, f'not a decodable image ({size} bytes)')
        results['img'] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        results['ori_shape'] = results['img'].shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeImage(BaseTransform):
    """Resize ``img`` to ``scale = (h, w)`` (area interpolation when
    shrinking, bilinear when enlarging). Random crops, flips and colour
    changes run later, per sample, in the data preprocessor.

    Args:
        scale (int | tuple): Output ``(h, w)``; an int is a square.
    """

    def __init__(self, scale) -> None:
        self.scale = (scale, scale) if isinstance(scale, int) else \
            tuple(scale)

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        h, w = self.scale
        shrink = h * w < img.shape[0] * img.shape[1]
        results['img'] = cv2.resize(
            img, (w, h),
            interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        results['img_shape'] = (h, w)
        return results


@TRANSFORMS.register_module()
class PackImageInputs(BaseTransform):
    """``dict(inputs=uint8 [C, H, W], data_samples=BaseDataElement)``;
    the sample holds ``gt_label`` (``LongTensor []``, ``-1`` unlabelled)
    and the ``meta_keys`` found as metainfo.

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('filename', 'ori_shape',
                                             'img_shape')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        img = np.ascontiguousarray(results['img'].transpose(2, 0, 1))
        sample = BaseDataElement(metainfo={
            k: results[k]
            for k in self.meta_keys if k in results
        })
        sample.gt_label = torch.tensor(results.get('label', -1))
        return dict(inputs=torch.from_numpy(img), data_samples=sample)


@TRANSFORMS.register_module()
class PackFrames(BaseTransform):
    """Pack the decoded frames of a video as images, for image models
    (``HViT``, ``SimCLR``) reading hvlm's video layout:
    ``dict(inputs=uint8 [N, C, H, W], data_samples=BaseDataElement)``.

    With ``SampleFrames(clip_len=1, num_clips=2)`` before it, the two
    frames come from two clips (the two halves) of the video: SimCLR then
    takes them as a positive pair (``SimCLRViews`` augments each). The
    sample's ``gt_label`` is ``-1`` (no label).

    Required keys: ``imgs`` (``[N, H, W, 3]`` from ``DecordDecode``, all
    frames resized to one size).

    Args:
        meta_keys (Sequence[str]): Keys copied into the metainfo.
    """

    def __init__(self,
                 meta_keys: Sequence[str] = ('video_id', 'filename',
                                             'frame_inds')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: Dict) -> Dict:
        imgs = np.asarray(results['imgs'])  # [N, H, W, 3]
        if imgs.ndim != 4:
            raise ValueError(f'PackFrames: imgs of shape {imgs.shape}, '
                             'expected [N, H, W, C]')
        inputs = torch.from_numpy(
            np.ascontiguousarray(imgs.transpose(0, 3, 1, 2)))
        sample = BaseDataElement(metainfo={
            k: results[k]
            for k in self.meta_keys if k in results
        })
        sample.gt_label = torch.tensor(-1)
        return dict(inputs=inputs, data_samples=sample)

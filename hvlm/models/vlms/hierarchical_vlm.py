"""The whole model: preprocessor, hierarchical backbone and task heads."""
from typing import Dict, List, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.registry import HEADS, MODELS
from hvlm.structures import OptSampleList, SampleList
from ..backbones.video_features import VideoFeatures

MODES = ('loss', 'predict', 'tensor')


@MODELS.register_module()
class HierarchicalVLM(BaseModel):
    """A video is ``num_clips`` clips; each clip is encoded on its own (so
    memory grows linearly with video length) and the heads regroup the clips
    of a video with ``VideoFeatures.num_clips``.

    An empty batch (every video skipped by the pipeline) gives ``[]`` in
    ``predict`` mode and a zero loss connected to every parameter in
    ``loss`` mode, so the optimizer step and distributed gradient
    synchronisation carry on.

    Args:
        backbone (dict): Config of the video backbone (``MODELS``).
        head (dict): Config of the head (``HEADS``), usually a
            ``MultiTaskHead``.
        data_preprocessor (dict, optional): Config of the preprocessor
            (``MODELS``); defaults to a ``VideoDataPreprocessor`` that only
            stacks and casts.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='VideoDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            # Build from hvlm's registry: mmengine's BaseModel would look in
            # its root registry, where hvlm's types are missing unless a
            # default scope is set.
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = HEADS.build(head)

    def extract_feat(self, inputs: Tensor) -> VideoFeatures:
        """Encode ``inputs [B, num_clips, C, T, H, W]``."""
        if inputs.dim() != 6:
            raise ValueError('inputs must be [B, num_clips, C, T, H, W], got '
                             f'shape {tuple(inputs.shape)}')
        B, num_clips = inputs.shape[:2]
        clips = inputs.flatten(0, 1)  # [B*num_clips, C, T, H, W]
        feats = self.backbone(clips)
        feats.num_clips = num_clips
        return feats

    def forward(self,
                inputs: Optional[Tensor],
                data_samples: OptSampleList = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], SampleList,
                                                object]:
        """Run in one of three modes.

        Args:
            inputs (Tensor, optional): ``[B, num_clips, C, T, H, W]``;
                ``None`` for an empty batch.
            data_samples (list[VideoDataSample], optional): Ground truth
                (``loss``) or where predictions go (``predict``).
            mode (str): ``'loss'`` -> dict of losses; ``'predict'`` ->
                data samples with predictions; ``'tensor'`` -> the head's
                raw outputs.
        """
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not one of {MODES}')
        if inputs is None:
            if mode == 'predict':
                return []
            if mode == 'loss':
                return dict(loss_empty_batch=self._zero_loss())
            raise ValueError("mode='tensor' needs inputs, got None (an "
                             'empty batch)')
        feats = self.extract_feat(inputs)
        if mode == 'tensor':
            return self.head(feats)
        if data_samples is None or len(data_samples) != inputs.shape[0]:
            raise ValueError(
                f'mode={mode!r} needs one data sample per video: got '
                f'{0 if data_samples is None else len(data_samples)} for '
                f'{inputs.shape[0]} videos')
        if mode == 'loss':
            return self.head.loss(feats, data_samples)
        return self.head.predict(feats, data_samples)

    def _zero_loss(self) -> Tensor:
        """0, but with every trainable parameter in its graph."""
        params: List[Tensor] = [
            p.sum() for p in self.parameters() if p.requires_grad
        ]
        if not params:
            return torch.zeros(())
        return torch.stack(params).sum() * 0.

"""ImageClassifier: backbone + classification head, optionally starting
from a self-supervised checkpoint."""
from typing import Dict, List, Optional, Union

from mmengine.model import BaseModel
from torch import Tensor

from hvlm.registry import HEADS, MODELS
from hvlm.utils.checkpoint_fit import load_submodule_weights


def load_backbone_weights(backbone, filename: str) -> None:
    """Load the backbone of a pretraining checkpoint into ``backbone``: an
    mmengine checkpoint of a whole model (``SimCLR``: the ``backbone.*``
    keys, the projection head dropped) or a bare backbone state dict. Keys
    or shapes that do not fit raise :class:`~hvlm.utils.CheckpointLoadError`
    listing the missing and unexpected keys; nothing is loaded then."""
    load_submodule_weights(
        backbone, filename, 'backbone.',
        what=f'the backbone {type(backbone).__name__} (ssl_checkpoint)')


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """Classify images ``[B, C, H, W]`` or videos as frames
    ``[B, T, C, H, W]`` (the frames' pooled features are averaged).

    ``ssl_checkpoint`` (the seed's ``--ssl-checkpoint``) loads a
    pretraining checkpoint's backbone (see :func:`load_backbone_weights`)
    when the model is built and again in :meth:`init_weights`, so the
    Runner's weight initialisation cannot overwrite it. Set it with
    ``--cfg-options model.ssl_checkpoint=work_dirs/.../epoch_N.pth``.

    Args:
        backbone (dict): ``MODELS`` config, e.g. ``HViT``.
        head (dict): ``HEADS`` config, e.g. ``ClsHead``; ``in_channels``
            defaults to the backbone's ``out_channels``.
        data_preprocessor (dict, optional): ``ImageDataPreprocessor`` config
            (batch augments such as MixUp/CutMix live there).
        ssl_checkpoint (str, optional): Pretraining checkpoint.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 data_preprocessor: Optional[dict] = None,
                 ssl_checkpoint: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImageDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        head = dict(head)
        head.setdefault('in_channels', self.backbone.out_channels)
        self.head = HEADS.build(head)
        self._share_num_classes(self.data_preprocessor)
        self.ssl_checkpoint = ssl_checkpoint
        if ssl_checkpoint:
            load_backbone_weights(self.backbone, ssl_checkpoint)

    def _share_num_classes(self, preprocessor) -> None:
        """Give the batch augments that mix targets (MixUp, CutMix, also
        inside ``RandomBatchAugment``) the head's ``num_classes`` unless
        they set it; a different value is an error."""
        todo = list(getattr(preprocessor, 'batch_augments', []))
        while todo:
            augment = todo.pop()
            todo += list(getattr(augment, 'augments', []))
            if not hasattr(augment, 'num_classes'):
                continue
            if augment.num_classes is None:
                augment.num_classes = self.head.num_classes
            elif augment.num_classes != self.head.num_classes:
                raise ValueError(
                    f'{type(augment).__name__}.num_classes='
                    f'{augment.num_classes} but the head has num_classes='
                    f'{self.head.num_classes}')

    def init_weights(self) -> None:
        super().init_weights()
        if self.ssl_checkpoint:
            load_backbone_weights(self.backbone, self.ssl_checkpoint)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Pooled features ``[B, C]`` (frames averaged)."""
        feats = self.backbone(inputs)
        return feats.mean(1) if feats.dim() == 3 else feats

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Tensor,
                                               List]:
        if mode == 'loss':
            return self.head.loss(self.extract_feat(inputs), data_samples)
        if mode == 'predict':
            return self.head.predict(self.extract_feat(inputs), data_samples)
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        raise ValueError(f'mode={mode!r} must be loss, predict or tensor')

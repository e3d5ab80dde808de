"""SimCLR: contrastive pretraining of a backbone without labels."""
from typing import Dict, List, Optional, Union

import torch.nn as nn
from mmengine.model import BaseModel
from torch import Tensor

from hvlm.registry import MODELS
from .nt_xent import nt_xent_loss


@MODELS.register_module()
class SimCLR(BaseModel):
    """Two augmented views of every sample should map to nearby points of
    a projection space, views of other samples far away (Chen et al.,
    2020).

    The views come from the data preprocessor (``SimCLRViews`` as a batch
    augment, per-sample parameters), so ``loss`` mode receives
    ``[B, 2, C, H, W]``. For video, the pair may be two frames of two
    clips of one video (``ImageFolderDataset``'s video mode gives
    ``[2, C, H, W]`` per item), which the augment then treats as the
    positive pair. The backbone's pooled features go through the projection
    head ``Linear-BN-ReLU-Linear`` to ``projection_dim``; the loss is
    :func:`nt_xent_loss` over the 2N - 1 candidates of each view, with
    negatives from every rank.

    ``predict`` and ``tensor`` modes return the backbone's features
    (``[B, C]``, not the projection: the projection is discarded after
    pretraining); ``predict`` writes them into the data samples as
    ``feature`` for probe metrics.

    Args:
        backbone (dict): ``MODELS`` config (e.g. ``HViT``).
        projection_dim (int): Output width of the projection head.
        hidden_dims (int, optional): Hidden width of the head; default the
            backbone's ``out_channels``.
        temperature (float): NT-Xent temperature (the seed's 0.07; see
            docs/SELF_SUPERVISED.md for what small batches want).
        gather_negatives (bool): Negatives from every rank.
        data_preprocessor (dict, optional): ``ImageDataPreprocessor``
            config, normally with ``SimCLRViews`` in ``batch_augments``.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 backbone: dict,
                 projection_dim: int = 128,
                 hidden_dims: Optional[int] = None,
                 temperature: float = 0.07,
                 gather_negatives: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ImageDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature={temperature} must be > 0')
        self.backbone = MODELS.build(backbone)
        width = self.backbone.out_channels
        hidden = hidden_dims or width
        self.projector = nn.Sequential(
            nn.Linear(width, hidden), nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True), nn.Linear(hidden, projection_dim))
        self.temperature = temperature
        self.gather_negatives = gather_negatives

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Backbone features ``[B, C]`` of images ``[B, C, H, W]``."""
        return self.backbone(inputs)

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[List] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], Tensor,
                                               List]:
        if mode == 'loss':
            if inputs is None or inputs.dim() != 5 or inputs.shape[1] != 2:
                got = None if inputs is None else tuple(inputs.shape)
                raise ValueError(
                    'SimCLR trains on view pairs [B, 2, C, H, W] (put '
                    'SimCLRViews in the data preprocessor\'s batch_augments)'
                    f', got {got}')
            B = inputs.shape[0]
            feats = self.backbone(inputs.flatten(0, 1))  # [2B, C]
            z = self.projector(feats).view(B, 2, -1)  # [B, 2, P]
            loss, acc = nt_xent_loss(z[:, 0], z[:, 1], self.temperature,
                                     self.gather_negatives)
            return dict(loss=loss, contrastive_acc=acc)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        if mode == 'predict':
            feats = self.extract_feat(inputs)
            for sample, feat in zip(data_samples, feats):
                sample.set_field(feat.detach(), 'feature')
            return data_samples
        raise ValueError(f'mode={mode!r} must be loss, predict or tensor')

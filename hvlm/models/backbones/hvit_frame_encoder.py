"""A self-supervised HViT as the per-frame stem of the video encoder."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor

from hvlm.registry import MODELS
from hvlm.structures.encodings import FrameEncoding
from hvlm.utils.checkpoint_fit import load_submodule_weights

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class HViTFrameEncoder(BaseModule):
    """Encode every frame of a clip with an :class:`HViT` loaded from a
    pretraining checkpoint (``SimCLR``), in the interface of the pretrained
    image encoders, so that it serves as ``HierarchicalVideoEncoder``'s
    ``stem``::

        backbone=dict(type='HierarchicalVideoEncoder', patch_size=1,
                      stem=dict(type='HViTFrameEncoder',
                                pretrained='work_dirs/simclr/epoch_30.pth',
                                backbone=dict(type='HViT', ...)))

    The patch tokens are the last stage's (after the final LayerNorm), on a
    grid of stride ``patch_size * 2 ** (stages - 1)``, which is this
    encoder's :attr:`patch_size`; :attr:`embed_dims` is the last stage's
    width. Frames are normalised with the statistics the pretraining used
    (``pixel_mean`` / ``pixel_std``, 0-255 scale, default the demo
    configs' ImageNet values), which the video model's preprocessor adopts.

    Args:
        pretrained (str): The pretraining checkpoint (``backbone.*`` keys)
            or a bare HViT state dict; keys that do not fit are an error.
        backbone (dict): The ``HViT`` config it was trained with.
        freeze (bool): Keep the HViT's weights fixed (and in eval mode).
        pixel_mean (Sequence[float]): Normalisation mean, 0-255 scale.
        pixel_std (Sequence[float]): Normalisation std, 0-255 scale.
    """

    def __init__(self,
                 pretrained: str,
                 backbone: dict,
                 freeze: bool = True,
                 pixel_mean: Sequence[float] = IMAGENET_MEAN,
                 pixel_std: Sequence[float] = IMAGENET_STD,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.hvit = MODELS.build(backbone)
        load_submodule_weights(self.hvit, pretrained, 'backbone.',
                               what=f'the stem HViT ({pretrained})')
        self.pretrained = pretrained
        self.freeze = freeze
        if freeze:
            self.hvit.requires_grad_(False)
        self.in_channels = self.hvit.in_channels
        self.patch_size = self.hvit.patch_size * 2**(len(self.hvit.stages) -
                                                     1)
        self.embed_dims = self.hvit.out_channels
        self.pixel_mean, self.pixel_std = list(pixel_mean), list(pixel_std)

    def init_weights(self) -> None:
        """Nothing to initialise: the weights are the checkpoint's (the
        Runner's initialisation must not overwrite them)."""

    def train(self, mode: bool = True) -> 'HViTFrameEncoder':
        super().train(mode)
        if self.freeze:
            self.hvit.eval()  # no dropout / drop path in a frozen stem
        return self

    def forward(self, x: Tensor) -> FrameEncoding:
        """``x [B, C, T, H, W]`` normalised clips -> patch tokens
        ``[B, T, h, w, C]`` and pooled frame embeddings ``[B, T, C]``."""
        B, _, T = x.shape[:3]
        frames = x.transpose(1, 2)  # [B, T, C, H, W]
        with torch.set_grad_enabled(torch.is_grad_enabled()
                                    and not self.freeze):
            tokens, (h, w) = self.hvit.forward_tokens(frames)  # [B*T, hw, C]
        C = tokens.shape[-1]
        return FrameEncoding(
            patch_tokens=tokens.reshape(B, T, h, w, C),
            embeds=tokens.mean(1).reshape(B, T, C))

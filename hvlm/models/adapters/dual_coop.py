"""Dual-CoOp: VideoCoOp's text context plus visual prompt tokens."""
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import ClipTowers, encode_images
from hvlm.registry import ADAPTERS
from .video_coop import VideoCoOp


@ADAPTERS.register_module()
class DualCoOp(VideoCoOp):
    """Learned text context (as :class:`VideoCoOp`) and ``ctx_len_video``
    learned tokens appended after the image tower's patch tokens.

    With ``deep_visual=False`` the visual tokens enter before the first
    layer and pass through all layers (VPT-shallow); with ``True`` each
    layer gets its own tokens, replacing the previous layer's outputs at
    those positions (VPT-deep).

    Args:
        ctx_len_video (int): Visual prompt tokens.
        deep_visual (bool): New tokens in every layer.
        **kwargs: :class:`VideoCoOp` arguments.
    """
    learns_visual = True

    def __init__(self, ctx_len_video: int = 8, deep_visual: bool = False,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(ctx_len_video, int) or ctx_len_video < 1:
            raise ValueError(f'DualCoOp: ctx_len_video={ctx_len_video!r} '
                             'must be a positive integer')
        self.ctx_len_video = ctx_len_video
        self.deep_visual = deep_visual
        self.visual_ctx: Optional[nn.Parameter] = None

    def setup(self, towers: ClipTowers) -> None:
        super().setup(towers)
        self.visual_ctx = make_visual_prompts(towers, self.ctx_len_video,
                                              self.deep_visual)

    def image_features(self, towers: ClipTowers, frames: Tensor,
                       num_frames: int) -> Tensor:
        return encode_images(towers, frames, self.visual_ctx)


def make_visual_prompts(towers: ClipTowers, n: int,
                        deep: bool) -> nn.Parameter:
    """``[depth or 1, n, C]`` visual prompts, normal with std 0.02."""
    layers = towers.vision_depth if deep else 1
    device = towers.visual_projection.weight.device
    return nn.Parameter(
        torch.randn(layers, n, towers.vision_width, device=device) * 0.02)

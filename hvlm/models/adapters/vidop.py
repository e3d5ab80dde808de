"""ViDOP: visual prompts only, the text side hand-written."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import ClipTowers, encode_images, encode_texts
from hvlm.registry import ADAPTERS
from .dual_coop import make_visual_prompts
from .prompt_learner import PromptLearner


@ADAPTERS.register_module()
class ViDOP(PromptLearner):
    """Visual prompt tokens (as :class:`DualCoOp`'s visual side) and fixed
    text features, computed once per class set without gradients.

    ``use_handcrafted_features=True`` (the original's option) encodes each
    class with the hand-written ``template`` ("a video of a person doing
    {}."); ``False`` encodes the class text alone.

    Args:
        ctx_len_video (int): Visual prompt tokens.
        deep_visual (bool): New tokens in every layer.
        use_handcrafted_features (bool): Template or bare class text.
        template (str): The hand-written prompt.
    """
    fixed_text = True
    learns_visual = True

    def __init__(self,
                 ctx_len_video: int = 8,
                 deep_visual: bool = False,
                 use_handcrafted_features: bool = True,
                 template: str = 'a video of a person doing {}.',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.ctx_len_video = ctx_len_video
        self.deep_visual = deep_visual
        self.use_handcrafted_features = use_handcrafted_features
        self.template = template
        self.visual_ctx: Optional[nn.Parameter] = None

    def setup(self, towers: ClipTowers) -> None:
        self.visual_ctx = make_visual_prompts(towers, self.ctx_len_video,
                                              self.deep_visual)

    def class_prompts(self, class_texts: Sequence[str]) -> Tuple[str, ...]:
        if self.use_handcrafted_features:
            return tuple(self.template.format(t) for t in class_texts)
        return tuple(class_texts)

    def text_features(self, towers: ClipTowers,
                      class_texts: Sequence[str]) -> Tensor:
        with torch.no_grad():
            return encode_texts(towers, self.class_prompts(class_texts))

    def image_features(self, towers: ClipTowers, frames: Tensor,
                       num_frames: int) -> Tensor:
        return encode_images(towers, frames, self.visual_ctx)

"""Video-CoOp: learned context words before the class name."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import (ClipTowers, assemble_prompts,
                                encode_text_embeddings)
from hvlm.registry import ADAPTERS
from .prompt_learner import PromptLearner


@ADAPTERS.register_module()
class VideoCoOp(PromptLearner):
    """CoOp's learned context for video (Zhou et al., IJCV 2022): the text
    input of class ``k`` is ``[start] v_1 ... v_n <name_k tokens> [end]``
    with ``v_i`` learned and shared by all classes (or one set per class).

    The assembled tokens get CLIP's position embeddings *after*
    concatenation and run with the causal and padding masks, the final
    layer norm and pooling at the end token (:func:`encode_text_embeddings`),
    so a class's feature depends on its own tokens only, never on the
    other class names; with ``ctx_init='a video of a'`` and
    ``name_template='{}.'`` it starts as exactly CLIP's feature of "a video
    of a {class}.".

    Args:
        ctx_len (int): Context vectors ``n``; with ``ctx_init`` it must be
            that phrase's token count (or None to take it).
        ctx_init (str, optional): Initialise from this phrase's token
            embeddings; ``None``: random (normal, std 0.02, as CoOp).
        class_specific (bool): One context per class (CoOp's CSC); the
            class set is then fixed at ``num_classes`` and the context of a
            label is tied to that label.
        num_classes (int, optional): Needed for ``class_specific``.
        name_template (str): Text of a class after the context.
    """

    def __init__(self,
                 ctx_len: Optional[int] = 16,
                 ctx_init: Optional[str] = None,
                 class_specific: bool = False,
                 num_classes: Optional[int] = None,
                 name_template: str = '{}.',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if class_specific and not num_classes:
            raise ValueError('VideoCoOp: class_specific=True needs '
                             'num_classes')
        if ctx_init is None and (not isinstance(ctx_len, int)
                                 or ctx_len < 1):
            raise ValueError(f'VideoCoOp: ctx_len={ctx_len!r} must be a '
                             'positive integer')
        self.ctx_len = ctx_len
        self.ctx_init = ctx_init
        self.class_specific = class_specific
        self.num_classes = num_classes
        self.name_template = name_template
        self.ctx: Optional[nn.Parameter] = None

    def setup(self, towers: ClipTowers) -> None:
        width = towers.text_width
        if self.ctx_init:
            ids = towers.word_ids(self.ctx_init)
            if self.ctx_len is not None and self.ctx_len != len(ids):
                raise ValueError(
                    f'VideoCoOp: ctx_len={self.ctx_len} but ctx_init='
                    f'{self.ctx_init!r} is {len(ids)} tokens; set ctx_len='
                    f'{len(ids)} or None')
            self.ctx_len = len(ids)
            with torch.no_grad():
                ctx = towers.embed_ids(ids).detach().clone()  # [n, C]
        else:
            ctx = torch.randn(self.ctx_len, width) * 0.02
        if self.class_specific:
            ctx = ctx.expand(self.num_classes, -1, -1).clone()  # [K, n, C]
        device = towers.text_projection.weight.device
        self.ctx = nn.Parameter(ctx.to(device))

    def context(self, num_classes: int) -> Tensor:
        """``[n, C]`` or ``[K, n, C]``."""
        if self.class_specific and num_classes != self.num_classes:
            raise ValueError(
                f'VideoCoOp: class_specific contexts were made for '
                f'num_classes={self.num_classes}, the class set has '
                f'{num_classes}')
        return self.ctx

    def text_features(self, towers: ClipTowers,
                      class_texts: Sequence[str]) -> Tensor:
        ids = [
            self.word_ids(towers, self.name_template.format(t))
            for t in class_texts
        ]
        return encode_text_embeddings(
            towers, *assemble_prompts(towers, self.context(len(ids)), ids))

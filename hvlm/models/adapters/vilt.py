"""ViLT (the original's name; not the ViLT paper): MaPLe-style coupled
deep prompts in both towers, regularised toward the template features."""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.models.layers import (ClipTowers, assemble_prompts, encode_images,
                                encode_text_embeddings, encode_texts)
from hvlm.registry import ADAPTERS
from .prompt_learner import PromptLearner


@ADAPTERS.register_module()
class ViLT(PromptLearner):
    """Coupled prompts of ``ctx_len`` tokens in the first ``prompt_depth``
    layers of both towers.

    Before ``switch_layer`` the text prompts are learned and each layer's
    vision prompts are their projection (a linear layer per layer, text
    width -> vision width); from ``switch_layer`` on, the vision prompts
    are learned and projected back into the text tower. Text prompts of
    layer 0 are the context words after the start token (as CoOp); those of
    deeper layers replace the states at the same positions; vision prompts
    follow the patch tokens (appended at layer 0, replaced after).

    The loss adds ``reg_weight * mean(1 - cos(t_k, h_k))`` between each
    class's learned feature ``t_k`` and its fixed feature ``h_k`` of the
    hand-written ``template``, which keeps the prompts near CLIP's
    zero-shot knowledge.

    Args:
        ctx_len (int): Prompt tokens per layer.
        prompt_depth (int): Layers with prompts (at most the shallower
            tower's depth).
        switch_layer (int, optional): First layer whose prompts are learned
            on the vision side; default ``prompt_depth // 2``, so the
            early half of the prompted layers is text-driven.
        reg_weight (float): Weight of the cosine regulariser (0: off).
        template (str): Hand-written prompt of the regulariser.
        name_template (str): Text of a class after the context.
    """
    learns_visual = True

    def __init__(self,
                 ctx_len: int = 2,
                 prompt_depth: int = 9,
                 switch_layer: Optional[int] = None,
                 reg_weight: float = 1.0,
                 template: str = 'a video of a person doing {}.',
                 name_template: str = '{}.',
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(ctx_len, int) or ctx_len < 1:
            raise ValueError(f'ViLT: ctx_len={ctx_len!r} must be a positive '
                             'integer')
        if prompt_depth < 1:
            raise ValueError(f'ViLT: prompt_depth={prompt_depth} must be >= '
                             '1')
        self.ctx_len = ctx_len
        self.prompt_depth = prompt_depth
        self.switch_layer = switch_layer
        self.reg_weight = reg_weight
        self.template = template
        self.name_template = name_template
        self._template_feats: Optional[Tuple[Tuple[str, ...], Tensor]] = None

    def setup(self, towers: ClipTowers) -> None:
        depth = min(self.prompt_depth, towers.text_depth,
                    towers.vision_depth)
        if depth != self.prompt_depth:
            raise ValueError(
                f'ViLT: prompt_depth={self.prompt_depth} but the CLIP has '
                f'{towers.text_depth} text and {towers.vision_depth} vision '
                'layers')
        switch = depth // 2 if self.switch_layer is None else \
            self.switch_layer
        if not 0 <= switch <= depth:
            raise ValueError(f'ViLT: switch_layer={switch} must be in '
                             f'0..{depth}')
        self.switch_layer = switch
        ct, cv, n = towers.text_width, towers.vision_width, self.ctx_len
        device = towers.text_projection.weight.device
        self.text_prompts = nn.Parameter(
            torch.randn(switch, n, ct, device=device) * 0.02)
        self.vision_prompts = nn.Parameter(
            torch.randn(depth - switch, n, cv, device=device) * 0.02)
        self.to_vision = nn.ModuleList(
            nn.Linear(ct, cv) for _ in range(switch)).to(device)
        self.to_text = nn.ModuleList(
            nn.Linear(cv, ct) for _ in range(depth - switch)).to(device)

    def prompts(self) -> Tuple[Tensor, Tensor]:
        """Per-layer prompts: text ``[depth, n, Ct]``, vision
        ``[depth, n, Cv]``."""
        text = [p for p in self.text_prompts] + [
            proj(p) for proj, p in zip(self.to_text, self.vision_prompts)
        ]
        vision = [proj(p) for proj, p in zip(self.to_vision,
                                             self.text_prompts)] + [
            p for p in self.vision_prompts
        ]
        return torch.stack(text), torch.stack(vision)

    def text_features(self, towers: ClipTowers,
                      class_texts: Sequence[str]) -> Tensor:
        text, _ = self.prompts()
        ids = [self.word_ids(towers, self.name_template.format(t))
               for t in class_texts]
        embeds, mask, eos = assemble_prompts(towers, text[0], ids)
        return encode_text_embeddings(
            towers, embeds, mask, eos,
            deep_prompts=text[1:] if len(text) > 1 else None)

    def image_features(self, towers: ClipTowers, frames: Tensor,
                       num_frames: int) -> Tensor:
        _, vision = self.prompts()
        return encode_images(towers, frames, vision)

    def extra_losses(self, towers: ClipTowers, class_texts: Sequence[str],
                     class_feats: Tensor) -> Dict[str, Tensor]:
        """The cosine regulariser on the normalised ``class_feats``."""
        if not self.reg_weight:
            return {}
        texts = tuple(class_texts)
        if self._template_feats is None or self._template_feats[0] != texts:
            with torch.no_grad():
                fixed = encode_texts(
                    towers, [self.template.format(t) for t in texts])
            self._template_feats = (texts, F.normalize(fixed, dim=-1))
        fixed = self._template_feats[1].to(class_feats.device)
        cos = (F.normalize(class_feats, dim=-1) * fixed).sum(-1)
        return dict(loss_text_reg=self.reg_weight * (1 - cos).mean())

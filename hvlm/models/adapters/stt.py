"""STT: ViTA plus summary-to-text tokens in every class prompt."""
from typing import List, Sequence

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import (ClipTowers, assemble_prompts,
                                encode_text_embeddings)
from hvlm.registry import ADAPTERS
from .vita import ViTA


@ADAPTERS.register_module()
class STT(ViTA):
    """:class:`ViTA`, and each clip's per-layer summary tokens, projected
    into the text width, appended to every class prompt of that clip
    (after the class name, before the end token).

    The text features therefore depend on the video: ``K`` class prompts
    per clip, so a step encodes ``K x clips`` texts (the method's cost grows
    with classes times videos, as in the original); the recognizer compares
    each clip with its own class features.

    Args:
        **kwargs: :class:`ViTA` arguments.
    """
    per_clip_text = True

    def setup(self, towers: ClipTowers) -> None:
        super().setup(towers)
        device = towers.text_projection.weight.device
        self.summary_to_text = nn.Linear(towers.vision_width,
                                         towers.text_width).to(device)
        self._summaries: List[Tensor] = []

    def start_batch(self) -> None:
        self._summaries = []

    def layer_prompts(self, i: int, cls: Tensor, num_frames: int) -> Tensor:
        prompts = super().layer_prompts(i, cls, num_frames)
        if i == 0:
            self._summaries.append([])
        # the summary of each clip: the last token of its first frame
        self._summaries[-1].append(prompts[::num_frames, -1])  # [B, C]
        return prompts

    def clip_text_features(self, towers: ClipTowers,
                           class_texts: Sequence[str]) -> Tensor:
        """``[clips, K, D]`` features: every class prompt of every clip
        encoded in the current batch (after :meth:`image_features`)."""
        summaries = torch.cat(
            [torch.stack(layers, dim=1) for layers in self._summaries])
        suffix = self.summary_to_text(summaries)  # [clips, depth, Ct]
        clips, K = suffix.shape[0], len(class_texts)
        ids = [self.word_ids(towers, self.name_template.format(t))
               for t in class_texts] * clips
        suffix = suffix.repeat_interleave(K, dim=0)  # [clips * K, m, Ct]
        feats = encode_text_embeddings(
            towers, *assemble_prompts(towers, self.context(K), ids, suffix))
        return feats.view(clips, K, -1)

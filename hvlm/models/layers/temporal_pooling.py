"""Frame features -> one video feature: mean, max or a learned query."""
import math
from typing import Optional

import torch
import torch.nn as nn
from torch import Tensor

MODES = ('mean', 'max', 'attention')


class TemporalPooling(nn.Module):
    """Pool ``[B, T, D]`` frame features over time; frames marked invalid
    in ``mask`` (padding) never count.

    - ``mean``: average of the valid frames.
    - ``max``: channel-wise maximum over the valid frames.
    - ``attention``: one learned query attends over the frames (keys and
      values projected, scaled dot product, padded frames masked out);
      the result is added to the valid frames' mean (residual) and layer
      normalised. Sized to the embedding ``D``.

    Args:
        mode (str): One of ``MODES``.
        embed_dims (int): ``D``; needed for ``'attention'``.
    """

    def __init__(self, mode: str = 'mean',
                 embed_dims: Optional[int] = None) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'temporal_pooling={mode!r} must be one of '
                             f'{MODES}')
        self.mode = mode
        if mode == 'attention':
            if not embed_dims:
                raise ValueError('attention pooling needs embed_dims')
            self.query = nn.Parameter(torch.randn(embed_dims) /
                                      math.sqrt(embed_dims))
            self.key = nn.Linear(embed_dims, embed_dims)
            self.value = nn.Linear(embed_dims, embed_dims)
            self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x: Tensor, mask: Optional[Tensor] = None) -> Tensor:
        """``x [B, T, D]``, ``mask [B, T]`` (True = a real frame; every
        video needs one) -> ``[B, D]``."""
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        mask = mask.bool()
        if not bool(mask.any(1).all()):
            raise ValueError('a video has no valid frame to pool')
        w = mask.unsqueeze(-1).to(x.dtype)  # [B, T, 1]
        mean = (x * w).sum(1) / w.sum(1)  # [B, D]
        if self.mode == 'mean':
            return mean
        if self.mode == 'max':
            return x.masked_fill(~mask.unsqueeze(-1),
                                 torch.finfo(x.dtype).min).amax(1)
        scores = self.key(x) @ self.query / math.sqrt(x.shape[-1])  # [B, T]
        scores = scores.masked_fill(~mask, float('-inf'))
        attn = scores.softmax(-1)  # [B, T]
        out = (attn.unsqueeze(-1) * self.value(x)).sum(1)  # [B, D]
        return self.norm(mean + out)

"""Weighted fusion of several per-token saliency maps."""
from typing import Dict, Optional

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS
from .grid_maps import normalize_per_clip


@MERGERS.register_module()
class MultiSaliencyFusion(nn.Module):
    """Normalise each source to ``[0, 1]`` per clip, then take a convex
    combination.

    Sources differ in scale by orders of magnitude (gradient magnitudes vs.
    cosine distances), so each is divided by its clip maximum first. The
    weights are renormalised to sum to one; with ``learnable=True`` they are
    parameters (a softmax over logits initialised from ``weights``). Note
    that the merger's choice of tokens is discrete: learnable weights only
    train when some loss reaches the fused map directly.

    Args:
        weights (dict): Source name -> non-negative weight, e.g.
            ``dict(edge=1, attention=1, color=1)``.
        learnable (bool): Make the weights parameters.
    """

    def __init__(self, weights: Dict[str, float],
                 learnable: bool = False) -> None:
        super().__init__()
        if not weights or any(w < 0 for w in weights.values()) or sum(
                weights.values()) <= 0:
            raise ValueError(f'weights={weights} must be a non-empty dict of '
                             'non-negative weights with a positive sum')
        self.names = list(weights)
        total = sum(weights.values())
        init = torch.tensor([weights[n] / total for n in self.names])
        if learnable:
            self.logits = nn.Parameter(init.clamp_min(1e-6).log())
        else:
            self.register_buffer('fixed', init, persistent=False)
        self.learnable = learnable

    def source_weights(self) -> Tensor:
        """``[S]`` weights in the order of ``names``, summing to one."""
        return torch.softmax(self.logits, 0) if self.learnable else self.fixed

    def forward(self, maps: Dict[str, Optional[Tensor]]) -> Tensor:
        """Args:
            maps (dict): Source name -> ``[B, N]`` map, or ``None`` when a
                source is unavailable for this input (its weight is then
                shared among the others).

        Returns:
            Tensor: ``[B, N]`` fused saliency in ``[0, 1]``.
        """
        unknown = set(maps) - set(self.names)
        if unknown:
            raise ValueError(f'unknown saliency sources {sorted(unknown)}; '
                             f'configured: {self.names}')
        present = [i for i, n in enumerate(self.names)
                   if maps.get(n) is not None]
        if not present:
            raise ValueError(f'no saliency map given; expected any of '
                             f'{self.names}')
        weights = self.source_weights()
        if len(present) < len(self.names):
            weights = weights[present]
        weights = weights / weights.sum()
        stacked = torch.stack([maps[self.names[i]] for i in present],
                              dim=-1).float()  # [B, N, S]
        return normalize_per_clip(stacked) @ weights  # [B, N]

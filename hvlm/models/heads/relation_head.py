"""Action Genome's three relation groups from pair features."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import HEADS


@HEADS.register_module()
class RelationHead(nn.Module):
    """Attention (single-label, softmax) and spatial / contacting
    (multi-label, sigmoid) predicates of each (person, object) pair.

    Args:
        in_channels (int): Pair feature width.
        num_attention, num_spatial, num_contacting (int): Group sizes
            (Action Genome: 3, 6, 17).
    """

    def __init__(self,
                 in_channels: int,
                 num_attention: int = 3,
                 num_spatial: int = 6,
                 num_contacting: int = 17) -> None:
        super().__init__()
        self.attention = nn.Linear(in_channels, num_attention)
        self.spatial = nn.Linear(in_channels, num_spatial)
        self.contacting = nn.Linear(in_channels, num_contacting)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """``x [P, C]`` -> logits ``[P, 3]``, ``[P, 6]``, ``[P, 17]``."""
        return self.attention(x), self.spatial(x), self.contacting(x)

    def loss(self, x: Tensor, attention: Tensor, spatial: Tensor,
             contacting: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy on attention ``[P]`` (class indices) and binary
        cross-entropy on the multi-hot ``spatial`` ``[P, 6]`` and
        ``contacting`` ``[P, 17]``, each a mean over pairs."""
        a, s, c = self(x)
        return dict(
            loss_attention=F.cross_entropy(a, attention.long()),
            loss_spatial=F.binary_cross_entropy_with_logits(
                s, spatial.to(s.dtype)),
            loss_contacting=F.binary_cross_entropy_with_logits(
                c, contacting.to(c.dtype)))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Probabilities: softmax attention, sigmoid spatial/contacting."""
        a, s, c = self(x)
        return a.softmax(-1), s.sigmoid(), c.sigmoid()

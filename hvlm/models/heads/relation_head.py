"""Action Genome's three relation groups from pair features."""
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import HEADS


def check_targets(attention_logits: Tensor, spatial_logits: Tensor,
                  contacting_logits: Tensor, attention: Tensor,
                  spatial: Tensor, contacting: Tensor) -> None:
    """Refuse targets that do not fit the head's group sizes (a data set
    with other predicates than the config's head), naming the key to set."""
    n = attention_logits.shape[-1]
    if len(attention) and (int(attention.max()) >= n or
                           int(attention.min()) < 0):
        raise ValueError(
            f'relation head: attention targets run to '
            f'{int(attention.max())}, but the head has {n} classes; set '
            "model.relation_head.num_attention to the data set's "
            'predicate_groups[0]')
    for name, logits, target in (('spatial', spatial_logits, spatial),
                                 ('contacting', contacting_logits,
                                  contacting)):
        if target.shape[-1] != logits.shape[-1]:
            raise ValueError(
                f'relation head: {name} targets have {target.shape[-1]} '
                f'predicates, the head {logits.shape[-1]}; set '
                f'model.relation_head.num_{name} to the data set\'s '
                'predicate_groups')


@HEADS.register_module()
class RelationHead(nn.Module):
    """Attention (single-label, softmax) and spatial / contacting
    (multi-label, sigmoid) predicates of each (person, object) pair.

    Args:
        in_channels (int): Pair feature width.
        num_attention, num_spatial, num_contacting (int): Group sizes
            (Action Genome: 3, 6, 17; EASG: its verbs, 0, its relations).
            A multi-label group of size 0 has no loss.
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
        check_targets(a, s, c, attention, spatial, contacting)
        losses = dict(loss_attention=F.cross_entropy(a, attention.long()))
        for name, logits, target in (('spatial', s, spatial),
                                     ('contacting', c, contacting)):
            if logits.shape[1]:  # an empty group has nothing to learn
                losses[f'loss_{name}'] = F.binary_cross_entropy_with_logits(
                    logits, target.to(logits.dtype))
        return losses

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Probabilities: softmax attention, sigmoid spatial/contacting."""
        a, s, c = self(x)
        return a.softmax(-1), s.sigmoid(), c.sigmoid()

"""Which tokens are redundant with which."""
import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class TokenSimilarity(nn.Module):
    """Cosine similarity between two token sets.

    ToMe (Bolya et al., ICLR 2023) measures redundancy on the attention
    keys averaged over heads: keys already summarise what a token offers to
    the others, and the cosine ignores their norm. Any ``[B, N, d]`` metric
    works (keys, or the tokens themselves when no keys are at hand).
    """

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """Args:
            a (Tensor): ``[B, Na, d]``.
            b (Tensor): ``[B, Nb, d]``.

        Returns:
            Tensor: ``[B, Na, Nb]`` cosine similarities in ``[-1, 1]``.
        """
        if a.dim() != 3 or b.dim() != 3 or a.shape[::2] != b.shape[::2]:
            raise ValueError('TokenSimilarity expects [B, Na, d] and '
                             f'[B, Nb, d], got {tuple(a.shape)} and '
                             f'{tuple(b.shape)}')
        return torch.bmm(unit_vectors(a),
                         unit_vectors(b).transpose(1, 2))  # [B, Na, Nb]


def unit_vectors(x: Tensor) -> Tensor:
    """``F.normalize(x, dim=-1)`` (``x / max(|x|, 1e-12)``) in three ops
    instead of four: the cues run many small ops, where the op count, not
    the arithmetic, sets the time."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(
        1e-12)

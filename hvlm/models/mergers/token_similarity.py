"""Which tokens are redundant with which."""
import torch.nn as nn
import torch.nn.functional as F
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
        a = F.normalize(a, dim=-1)
        b = F.normalize(b, dim=-1)
        return a @ b.transpose(1, 2)  # [B, Na, Nb]

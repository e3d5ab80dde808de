"""Saliency from what the encoder's attention already computed."""
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS
from .token_similarity import unit_vectors


@MERGERS.register_module()
class AttentionSaliency(nn.Module):
    """Per-token importance from attention weights or keys.

    * Weights ``[B, heads, N, N]``: the attention a token *receives*,
      averaged over heads and queries (tokens many others read are the
      ones that matter, as in EViT's token scoring, Liang et al. 2022).
    * Keys ``[B, N, d]`` (what fused attention kernels leave behind, since
      they never form the weights): ``1 - cos(k_i, mean key)``, how far a
      key stands from the clip's average key. Redundant background keys
      crowd around the mean; distinctive ones lie far from it.
    """

    def forward(self, attn: Tensor) -> Tensor:
        """Args:
            attn (Tensor): weights ``[B, heads, N, N]`` or keys
                ``[B, N, d]``.

        Returns:
            Tensor: ``[B, N]`` non-negative saliency.
        """
        if attn.dim() == 4:
            return attn.float().mean(dim=(1, 2))  # [B, N]
        if attn.dim() == 3:
            keys = unit_vectors(attn.float())  # [B, N, d]
            centre = unit_vectors(keys.mean(1, keepdim=True))  # [B, 1, d]
            return (1 - (keys * centre).sum(-1)).clamp_min_(0)  # [B, N]
        raise ValueError('AttentionSaliency expects weights [B, heads, N, N] '
                         f'or keys [B, N, d], got {tuple(attn.shape)}')

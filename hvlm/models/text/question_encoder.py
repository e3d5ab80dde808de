"""Encode a tokenised question while reading the video."""
import torch
import torch.nn as nn
from torch import Tensor

from .text_transformer_layer import TextTransformerLayer


class QuestionVideoEncoder(nn.Module):
    """Question tokens attend to each other and to the video tokens.

    Word and position embeddings, then ``num_layers``
    :class:`TextTransformerLayer` with cross-attention, so every question
    word is re-read in the light of the video (the fusion of e.g. Lei et al.
    2021, "ClipBERT", by cross- rather than joint attention because the
    video is far longer than the question). The output is the mean of the
    non-padding positions.

    Args:
        vocab_size (int): Word-embedding capacity.
        embed_dims (int): Width ``C``.
        num_layers (int): Number of layers.
        num_heads (int): Attention heads.
        max_len (int): Longest question in tokens.
        dropout (float): Dropout inside the layers.
        pad_id (int): Id of the padding token.
    """

    def __init__(self,
                 vocab_size: int,
                 embed_dims: int,
                 num_layers: int = 2,
                 num_heads: int = 4,
                 max_len: int = 32,
                 dropout: float = 0.1,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.max_len = max_len
        self.embed = nn.Embedding(vocab_size, embed_dims)
        self.pos = nn.Parameter(torch.zeros(1, max_len, embed_dims))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(
            TextTransformerLayer(embed_dims, num_heads, dropout=dropout)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, ids: Tensor, memory: Tensor,
                memory_bias: Tensor) -> Tensor:
        """``ids [Q, L]`` (``L <= max_len``), ``memory [Q, M, C]``,
        ``memory_bias [Q, M]`` -> ``[Q, C]``."""
        if ids.shape[1] > self.max_len:
            raise ValueError(f'questions of {ids.shape[1]} tokens exceed '
                             f'max_len={self.max_len}')
        keep = ids != self.pad_id  # [Q, L]
        x = self.embed(ids) + self.pos[:, :ids.shape[1]]  # [Q, L, C]
        self_bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
        self_bias = self_bias.masked_fill(~keep, float('-inf'))
        self_bias = self_bias[:, None, None, :]  # [Q, 1, 1, L]
        for layer in self.layers:
            x = layer(x, self_bias=self_bias, memory=memory,
                      memory_bias=memory_bias)
        x = self.norm(x)  # [Q, L, C]
        weight = keep.to(x.dtype).unsqueeze(-1)  # [Q, L, 1]
        return (x * weight).sum(1) / weight.sum(1).clamp_min(1)  # [Q, C]

"""A transformer decoder that writes captions while reading the video."""
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .beam_search import beam_search, greedy_search
from .text_transformer_layer import TextTransformerLayer


class CaptionDecoder(nn.Module):
    """Causal self-attention over the words written so far and
    cross-attention to the video tokens, then a linear layer over the
    vocabulary (the decoder of Vaswani et al. 2017 with a video as the
    source sequence, as in Zhou et al. 2018, "End-to-End Dense Video
    Captioning with Masked Transformer").

    Training uses teacher forcing (:meth:`loss`: the ground-truth prefix
    predicts the next word); inference decodes greedily or by beam search
    (:meth:`generate`).

    Args:
        vocab_size (int): Output capacity (the original: 10000 words).
        embed_dims (int): Width ``C``.
        num_layers (int): Decoder layers.
        num_heads (int): Attention heads.
        max_len (int): Longest caption in tokens, BOS and EOS included.
        dropout (float): Dropout inside the layers.
        pad_id, bos_id, eos_id (int): Special token ids.
    """

    def __init__(self,
                 vocab_size: int,
                 embed_dims: int,
                 num_layers: int = 2,
                 num_heads: int = 4,
                 max_len: int = 24,
                 dropout: float = 0.1,
                 pad_id: int = 0,
                 bos_id: int = 2,
                 eos_id: int = 3) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.embed = nn.Embedding(vocab_size, embed_dims)
        # Unit-variance logits at initialisation despite the tied output.
        nn.init.normal_(self.embed.weight, std=embed_dims**-0.5)
        self.pos = nn.Parameter(torch.zeros(1, max_len, embed_dims))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.layers = nn.ModuleList(
            TextTransformerLayer(embed_dims, num_heads, dropout=dropout)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)
        # The output layer reuses the word embedding (weight tying, Press &
        # Wolf 2017, "Using the Output Embedding to Improve Language
        # Models"): one vocabulary-sized matrix instead of two. It is applied
        # functionally rather than by sharing a Parameter between two
        # modules, which optimizer constructors would put in two groups.
        self.word_bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, prefix: Tensor, memory: Tensor,
                memory_bias: Tensor) -> Tensor:
        """``prefix [S, L]`` (BOS first), ``memory [S, M, C]``,
        ``memory_bias [S, M]`` -> next-word logits ``[S, L, V]``."""
        if prefix.shape[1] > self.max_len:
            raise ValueError(f'prefix of {prefix.shape[1]} tokens exceeds '
                             f'max_len={self.max_len}')
        x = self.embed(prefix) + self.pos[:, :prefix.shape[1]]  # [S, L, C]
        for layer in self.layers:
            x = layer(x, causal=True, memory=memory, memory_bias=memory_bias)
        return F.linear(self.norm(x), self.embed.weight,
                        self.word_bias)  # [S, L, V]

    def loss(self, targets: Tensor, memory: Tensor,
             memory_bias: Tensor) -> Tensor:
        """Teacher-forced cross-entropy, summed over the non-padding words.

        Args:
            targets: ``[S, L]`` rows ``[BOS] words [EOS] [PAD]...``.

        Returns:
            ``(sum of word losses, number of words)`` as a scalar pair
            ``[2]`` so callers can normalise over a whole batch.
        """
        logits = self(targets[:, :-1], memory, memory_bias)  # [S, L-1, V]
        gold = targets[:, 1:]  # [S, L-1]
        total = F.cross_entropy(
            logits.reshape(-1, self.vocab_size), gold.reshape(-1),
            ignore_index=self.pad_id, reduction='sum')
        return torch.stack(
            [total, (gold != self.pad_id).sum().to(total.dtype)])

    @torch.no_grad()
    def generate(self,
                 memory: Tensor,
                 memory_bias: Tensor,
                 beam_size: int = 1,
                 max_len: Optional[int] = None) -> List[List[int]]:
        """Word ids of one caption per row of ``memory [S, M, C]``
        (without BOS and EOS). ``beam_size=1`` is greedy decoding."""
        max_len = min(max_len or self.max_len, self.max_len) - 1
        if beam_size == 1:
            def step(prefix: Tensor) -> Tensor:
                return self(prefix, memory, memory_bias)[:, -1]

            rows = greedy_search(step, self.bos_id, self.eos_id, max_len,
                                 memory.shape[0], memory.device).tolist()
        else:
            rows = []
            for i in range(memory.shape[0]):
                mem, bias = memory[i:i + 1], memory_bias[i:i + 1]

                def step(prefix: Tensor, mem=mem, bias=bias) -> Tensor:
                    k = prefix.shape[0]
                    logits = self(prefix, mem.expand(k, -1, -1),
                                  bias.expand(k, -1))[:, -1]  # [K, V]
                    return logits.log_softmax(-1)

                rows.append(
                    beam_search(step, self.bos_id, self.eos_id, max_len,
                                beam_size, memory.device)[0])
        return [r[:r.index(self.eos_id)] if self.eos_id in r else r
                for r in rows]

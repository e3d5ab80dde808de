"""Attention over a bounded, compressed memory bank of past tokens, so a
long video is processed clip by clip in flat memory."""
import heapq
import math
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .base import MultiHeadAttentionBase
from .blockwise import memory_key_value, merge_heads


def merge_plan(bank: np.ndarray, size: np.ndarray,
               max_len: int) -> np.ndarray:
    """Which entries MA-LMM's greedy compression merges together.

    Repeatedly merge the adjacent pair with the highest cosine similarity
    (the leftmost on ties) into its size-weighted mean, until ``max_len``
    entries remain. Merged entries are consecutive runs, so the plan is a
    group index per entry. A heap keyed on the pair similarity with lazy
    deletion makes this ``O(M log M)`` instead of ``O(M^2)``.

    Args:
        bank (np.ndarray): ``[M, C]`` entries (float64).
        size (np.ndarray): ``[M]`` tokens each entry stands for.
        max_len (int): Bound on the number of groups.

    Returns:
        np.ndarray: ``[M]`` group of each entry, ``0..min(M, max_len)-1``,
        non-decreasing.
    """
    M = len(bank)
    if M <= max_len:
        return np.arange(M)
    vec, sz = bank.copy(), size.astype(np.float64).copy()
    unit = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True),
                            1e-12)
    # Plain lists: indexing them is far cheaper than numpy scalars.
    nxt = list(range(1, M + 1))
    prv = list(range(-1, M - 1))
    alive = [True] * M
    version = [0] * M
    sims = (unit[:-1] * unit[1:]).sum(1)  # [M - 1]
    heap = [(-s, i, 0) for i, s in enumerate(sims.tolist())]
    heapq.heapify(heap)
    for _ in range(M - max_len):
        while True:
            _, i, stamp = heapq.heappop(heap)
            if alive[i] and stamp == version[i] and nxt[i] < M:
                break
        j = nxt[i]
        vec[i] = (vec[i] * sz[i] + vec[j] * sz[j]) / (sz[i] + sz[j])
        sz[i] += sz[j]
        unit[i] = vec[i] / max(math.sqrt(vec[i] @ vec[i]), 1e-12)
        alive[j] = False
        nxt[i] = nxt[j]
        if nxt[i] < M:
            prv[nxt[i]] = i
        version[i] += 1
        if nxt[i] < M:
            heapq.heappush(
                heap, (-float(unit[i] @ unit[nxt[i]]), i, version[i]))
        p = prv[i]
        if p >= 0:
            version[p] += 1
            heapq.heappush(heap, (-float(unit[p] @ unit[i]), p, version[p]))
    # An entry belongs to the last alive entry at or before it.
    return np.cumsum(alive) - 1


def compress_memory(bank: Tensor, size: Tensor,
                    max_len: int) -> Tuple[Tensor, Tensor]:
    """Merge the most similar adjacent entries until at most ``max_len``
    remain (MA-LMM's memory bank compression).

    He et al., "MA-LMM: Memory-Augmented Large Multimodal Model for
    Long-Term Video Understanding" (CVPR 2024): adjacent entries of a video
    memory are often near duplicates, so the pair with the highest cosine
    similarity is averaged into one entry, one pair at a time. Here the
    average is weighted by how many tokens each entry already stands for,
    so a merged entry is the mean of every token it absorbed and its size
    is their number. The greedy choice is made on detached values
    (:func:`merge_plan`); the merge itself is one differentiable
    size-weighted segment mean.

    Args:
        bank (Tensor): ``[B, M, C]`` entries in temporal order.
        size (Tensor): ``[B, M]`` tokens each entry stands for.
        max_len (int): Bound on the length (>= 1).

    Returns:
        tuple[Tensor, Tensor]: ``[B, min(M, max_len), C]`` and its sizes.
    """
    if max_len < 1:
        raise ValueError(f'max_len={max_len} must be >= 1')
    B, M, C = bank.shape
    if tuple(size.shape) != (B, M):
        raise ValueError(f'size has shape {tuple(size.shape)}, expected '
                         f'[B, M] = [{B}, {M}]')
    if M <= max_len:
        return bank, size
    feats = bank.detach().double().cpu().numpy()
    sizes = size.detach().double().cpu().numpy()
    group = torch.from_numpy(
        np.stack([merge_plan(feats[b], sizes[b], max_len)
                  for b in range(B)])).to(bank.device)  # [B, M]
    new_size = size.new_zeros(B, max_len).scatter_add(1, group, size)
    total = bank.new_zeros(B, max_len, C).scatter_add(
        1, group[..., None].expand(B, M, C),
        bank * size[..., None])  # [B, max_len, C]
    return total / new_size[..., None], new_size


@ATTENTIONS.register_module()
class CrossMemoryAttention(MultiHeadAttentionBase):
    """Queries from the current tokens; keys and values from a memory bank
    of earlier tokens plus the current tokens.

    The tokens are processed in segments (by default one time step of the
    grid, ``H * W`` tokens, else the whole input). Segment ``s`` attends to
    ``[bank; segment s]``; then the segment is appended to the bank, which
    is compressed back to at most ``memory_size`` entries by
    :func:`compress_memory`. Each bank entry is a size-weighted mean of the
    tokens it absorbed and carries ``log(size)`` as a key bias
    (proportional attention), so a merged entry weighs as much as the
    tokens behind it. Attention cost per segment is bounded by
    ``(memory_size + segment) * segment``: memory stays flat however long
    the video is.

    Across clips: with ``carry_memory=True`` the bank (detached, like
    Transformer-XL's cache) survives the call, so feeding the clips of one
    long video one after another in order gives every clip a compressed
    view of all earlier ones; call :meth:`reset_memory` before the next
    video. The bank is kept per batch element (``[B, M, C]``). With
    ``carry_memory=False`` (training on shuffled clips) every call starts
    from an empty bank.

    Args:
        embed_dims (int): Channels ``C`` of the tokens.
        num_heads (int): Number of heads; must divide ``embed_dims``.
        qkv_bias (bool): Add a bias to the query/key/value projection.
        attn_drop (float): Dropout on the attention weights.
        proj_drop (float): Dropout after the output projection.
        memory_size (int): Bound on the bank length (>= 1).
        segment_len (int, optional): Tokens per segment; None: ``H * W`` of
            ``shape`` when given, else all tokens at once.
        carry_memory (bool): Keep the bank across calls.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 memory_size: int = 128,
                 segment_len: Optional[int] = None,
                 carry_memory: bool = False) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if memory_size < 1:
            raise ValueError(f'memory_size={memory_size} must be >= 1')
        if segment_len is not None and segment_len < 1:
            raise ValueError(
                f'segment_len={segment_len} must be >= 1 or None')
        self.memory_size = memory_size
        self.segment_len = segment_len
        self.carry_memory = carry_memory
        self._bank: Optional[Tensor] = None
        self._bank_size: Optional[Tensor] = None

    def reset_memory(self) -> None:
        """Forget the bank (call between videos)."""
        self._bank = self._bank_size = None

    @property
    def memory_bank(self) -> Optional[Tuple[Tensor, Tensor]]:
        """The carried bank ``([B, M, C], sizes [B, M])`` or None."""
        if self._bank is None:
            return None
        return self._bank, self._bank_size

    def _segment_of(self, num_tokens: int,
                    shape: Optional[Tuple[int, int, int]]) -> int:
        if self.segment_len is not None:
            return min(self.segment_len, num_tokens)
        if shape is not None:
            T, H, W = shape
            if T * H * W != num_tokens:
                raise ValueError(f'shape={tuple(shape)} has {T * H * W} '
                                 f'tokens, but x has N={num_tokens}')
            return H * W
        return num_tokens

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend to the bank and the current tokens, segment by segment.

        Args:
            x (Tensor): Tokens ``[B, N, C]`` in temporal order.
            shape (tuple, optional): ``(T, H, W)`` grid (sets the segment).
            size (Tensor, optional): ``[B, N]`` tokens merged into each.
            memory (Tensor, optional): ``[B, M, C]`` extra keys/values seen
                by every query (size 1), not stored in the bank.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        q, k, v, bias = self.project(x, size)  # [B, h, N, d] x 3
        sizes = x.new_ones(B, N) if size is None else size.to(x.dtype)
        extra_k = extra_v = None
        if memory is not None:
            extra_k, extra_v = memory_key_value(self.qkv, memory, B,
                                                self.num_heads)

        bank, bank_size = None, None
        if self.carry_memory and self._bank is not None:
            if self._bank.shape[0] != B:
                raise ValueError(
                    f'the carried memory bank holds {self._bank.shape[0]} '
                    f'videos but x has B={B}; call reset_memory() before '
                    'a new batch of videos')
            bank = self._bank.to(x.dtype)
            bank_size = self._bank_size.to(x.dtype)

        seg = self._segment_of(N, shape)
        dropout_p = self.attn_drop if self.training else 0.
        outs = []
        for start in range(0, N, seg):
            sl = slice(start, min(start + seg, N))
            keys, values = [k[:, :, sl]], [v[:, :, sl]]  # [B, h, n, d]
            logit_bias = [x.new_zeros(B, keys[0].shape[2])
                          if bias is None else bias[:, sl]]
            if bank is not None:
                bk, bv = memory_key_value(self.qkv, bank, B, self.num_heads)
                keys.insert(0, bk)
                values.insert(0, bv)
                logit_bias.insert(0, bank_size.log())
            if extra_k is not None:
                keys.insert(0, extra_k)
                values.insert(0, extra_v)
                logit_bias.insert(0, x.new_zeros(B, extra_k.shape[2]))
            mask = None
            if bias is not None or bank is not None:
                mask = torch.cat(logit_bias, 1)[:, None, None, :]
            outs.append(
                F.scaled_dot_product_attention(
                    q[:, :, sl], torch.cat(keys, 2), torch.cat(values, 2),
                    attn_mask=mask, dropout_p=dropout_p))  # [B, h, n, d]
            new, new_size = x[:, sl], sizes[:, sl]  # [B, n, C], [B, n]
            if bank is not None:
                new = torch.cat([bank, new], 1)  # [B, M + n, C]
                new_size = torch.cat([bank_size, new_size], 1)  # [B, M + n]
            bank, bank_size = compress_memory(new, new_size,
                                              self.memory_size)

        if self.carry_memory:
            self._bank, self._bank_size = bank.detach(), bank_size.detach()
        out = merge_heads(torch.cat(outs, 2))  # [B, N, C]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'memory_size={self.memory_size}, '
                f'segment_len={self.segment_len}, '
                f'carry_memory={self.carry_memory}')

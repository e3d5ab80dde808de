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


def _cosine(dot: float, sq_a: float, sq_b: float) -> float:
    """Cosine similarity from a dot product and two squared norms; 0 when
    either vector is zero (like a clamped norm)."""
    norms = sq_a * sq_b
    return dot / math.sqrt(norms) if norms > 0 else 0.


def merge_plan(bank: np.ndarray, size: np.ndarray,
               max_len: int) -> np.ndarray:
    """Which entries MA-LMM's greedy compression merges together.

    Repeatedly merge the adjacent pair with the highest cosine similarity
    (the leftmost on ties) into its size-weighted mean, until ``max_len``
    entries remain. Merged entries are consecutive runs, so the plan is a
    group index per entry. A heap keyed on the pair similarity with lazy
    deletion makes this ``O(M log M)`` instead of ``O(M^2)``.

    The cosine similarity does not depend on the scale of its arguments,
    so the greedy choice is made on size-weighted *sums* (``size * mean``)
    rather than means: a merge is then one vector addition, and each merge
    costs three dot products (the merged entry's squared norm and its two
    new neighbour pairs). With integer-valued entries and sizes every dot
    product is exact whatever the summation order, so equal pairs tie
    exactly and the leftmost wins.

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
    total = np.ascontiguousarray(
        np.asarray(bank, np.float64) *
        np.asarray(size, np.float64)[:, None])  # [M, C]
    # Row views in a list: indexing it is far cheaper than ``total[i]``.
    rows = list(total)
    sq = np.einsum('ij,ij->i', total, total).tolist()
    dots = np.einsum('ij,ij->i', total[:-1], total[1:]).tolist()
    nxt = list(range(1, M + 1))
    prv = list(range(-1, M - 1))
    alive = [True] * M
    version = [0] * M
    heap = [(-_cosine(d, sq[i], sq[i + 1]), i, 0)
            for i, d in enumerate(dots)]
    heapq.heapify(heap)
    for _ in range(M - max_len):
        while True:
            _, i, stamp = heapq.heappop(heap)
            if alive[i] and stamp == version[i] and nxt[i] < M:
                break
        j = nxt[i]
        row = rows[i]
        row += rows[j]  # in place: the sum of the merged run
        sq[i] = float(row @ row)
        alive[j] = False
        nxt[i] = k = nxt[j]
        version[i] += 1
        if k < M:
            prv[k] = i
            heapq.heappush(heap, (-_cosine(float(row @ rows[k]), sq[i],
                                           sq[k]), i, version[i]))
        p = prv[i]
        if p >= 0:
            version[p] += 1
            heapq.heappush(heap, (-_cosine(float(rows[p] @ row), sq[p],
                                           sq[i]), p, version[p]))
    # An entry belongs to the last alive entry at or before it.
    return np.cumsum(alive) - 1


def merge_groups(values: Tensor, size: Tensor, group: Tensor,
                 num_groups: int) -> Tuple[Tensor, Tensor]:
    """Size-weighted mean of ``values`` over groups of entries.

    Args:
        values (Tensor): ``[B, ..., M, D]`` entries along dim ``-2``.
        size (Tensor): ``[B, M]`` tokens each entry stands for.
        group (Tensor): ``[B, M]`` group of each entry (int64).
        num_groups (int): Number of groups ``G``.

    Returns:
        tuple[Tensor, Tensor]: ``[B, ..., G, D]`` means and ``[B, G]``
        sizes.
    """
    B, M = group.shape
    D = values.shape[-1]
    new_size = size.new_zeros(B, num_groups).scatter_add(1, group, size)
    # Broadcast [B, M] over the middle dims (heads) of ``values``.
    view = (B, ) + (1, ) * (values.dim() - 3) + (M, 1)
    index = group.view(view).expand(*values.shape[:-2], M, D)
    out_shape = values.shape[:-2] + (num_groups, D)
    total = values.new_zeros(out_shape).scatter_add(
        -2, index, values * size.view(view).to(values.dtype))
    return total / new_size.view(view[:-2] + (num_groups, 1)).to(
        values.dtype), new_size


def compression_plan(bank: Tensor, size: Tensor,
                     max_len: int) -> Optional[Tensor]:
    """Group index ``[B, M]`` of :func:`merge_plan` for every video, or
    None when nothing needs merging (``M <= max_len``)."""
    B, M = size.shape
    if M <= max_len:
        return None
    feats = bank.detach().double().cpu().numpy()
    sizes = size.detach().double().cpu().numpy()
    return torch.from_numpy(
        np.stack([merge_plan(feats[b], sizes[b], max_len)
                  for b in range(B)])).to(bank.device)  # [B, M]


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
    size-weighted segment mean (:func:`merge_groups`).

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
    group = compression_plan(bank, size, max_len)
    if group is None:
        return bank, size
    return merge_groups(bank, size, group, max_len)


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

    Time is linear in the number of tokens: the tokens are projected once,
    the bank's keys/values are merged from the tokens' keys/values with the
    greedy plan (exactly the projection of the merged bank, as the
    projection is affine) rather than re-projected every segment, the plan
    itself costs three dot products per merge (:func:`merge_plan`), and the
    segments are views of one ``split`` whose backward writes each gradient
    once.

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
        # Bank merges accumulate in at least fp32 (entries may stand for
        # thousands of tokens); attention runs in the dtype of ``q``.
        acc = torch.promote_types(k.dtype, torch.float32)

        # The bank lives twice: as tokens ``bank`` (detached, what the
        # greedy plan is made on and what is carried across calls) and as
        # its keys/values ``bank_k``/``bank_v`` (differentiable). The
        # key/value projection is affine and a bank entry is a size-weighted
        # mean (weights summing to 1) of tokens, so its keys/values are the
        # same mean of the tokens' keys/values: they are merged with the
        # same plan instead of re-projecting the bank every segment.
        bank = bank_size = bank_k = bank_v = None
        if self.carry_memory and self._bank is not None:
            if self._bank.shape[0] != B:
                raise ValueError(
                    f'the carried memory bank holds {self._bank.shape[0]} '
                    f'videos but x has B={B}; call reset_memory() before '
                    'a new batch of videos')
            bank = self._bank.to(x.dtype)
            bank_size = self._bank_size.to(x.dtype)
            bank_k, bank_v = memory_key_value(self.qkv, bank, B,
                                              self.num_heads)
            bank_k, bank_v = bank_k.to(acc), bank_v.to(acc)

        seg = self._segment_of(N, shape)
        dropout_p = self.attn_drop if self.training else 0.
        # ``split`` rather than slicing in the loop: the backward of ``T``
        # slices would write ``T`` full-size zero gradients (``O(N^2 / seg)``
        # work), that of one split concatenates once.
        q_seg, k_seg, v_seg = (t.split(seg, 2) for t in (q, k, v))
        x_seg = x.detach().split(seg, 1)
        size_seg = sizes.split(seg, 1)
        bias_seg = None if bias is None else bias.split(seg, 1)
        outs = []
        for s in range(len(q_seg)):
            n = q_seg[s].shape[2]
            logit_bias = (x.new_zeros(B, n)
                          if bias_seg is None else bias_seg[s])  # [B, n]
            new, new_size = x_seg[s], size_seg[s]  # [B, n, C], [B, n]
            new_k, new_v = k_seg[s].to(acc), v_seg[s].to(acc)
            if bank is not None:
                new = torch.cat([bank, new], 1)  # [B, M + n, C]
                new_size = torch.cat([bank_size, new_size], 1)  # [B, M + n]
                # [B, h, M + n, d]: the keys of this segment's attention
                # and the input of the next compression at once.
                new_k = torch.cat([bank_k, new_k], 2)
                new_v = torch.cat([bank_v, new_v], 2)
                logit_bias = torch.cat([bank_size.log(), logit_bias], 1)
            keys, values = new_k.to(k.dtype), new_v.to(v.dtype)
            if extra_k is not None:
                keys = torch.cat([extra_k, keys], 2)
                values = torch.cat([extra_v, values], 2)
                logit_bias = torch.cat(
                    [x.new_zeros(B, extra_k.shape[2]), logit_bias], 1)
            mask = None
            if bias is not None or bank is not None:
                mask = logit_bias[:, None, None, :]
            outs.append(
                F.scaled_dot_product_attention(
                    q_seg[s], keys, values, attn_mask=mask,
                    dropout_p=dropout_p))  # [B, h, n, d]

            group = compression_plan(new, new_size, self.memory_size)
            if group is None:
                bank, bank_size, bank_k, bank_v = new, new_size, new_k, new_v
                continue
            with torch.no_grad():
                bank = merge_groups(new, new_size.detach(), group,
                                    self.memory_size)[0]
            bank_k, bank_size = merge_groups(new_k, new_size, group,
                                             self.memory_size)
            bank_v = merge_groups(new_v, new_size, group,
                                  self.memory_size)[0]

        if self.carry_memory:
            self._bank, self._bank_size = bank.detach(), bank_size.detach()
        out = merge_heads(torch.cat(outs, 2))  # [B, N, C]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, '
                f'memory_size={self.memory_size}, '
                f'segment_len={self.segment_len}, '
                f'carry_memory={self.carry_memory}')

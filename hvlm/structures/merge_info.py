"""The merger contract: what a merge returns and the math every merger shares.

A merge is fully described by ``index``: for every input token, the output
slot it joins. Merged values are size-weighted averages and output sizes are
sums, so merging twice equals merging once with the composed index, and any
per-token output can be spread back to the input tokens with a gather.
"""
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, Optional, Tuple

import torch
from torch import Tensor


@dataclass
class MergeInfo:
    """The result of one merge.

    Attributes:
        x (Tensor): Merged tokens ``[B, N', C]``.
        size (Tensor): ``[B, N']`` number of original tokens behind each
            merged token (float, so that it can enter ``log`` directly).
        index (Tensor): ``LongTensor [B, N]``, the merged slot of every
            *input* token.
        shape (tuple, optional): ``(T, H, W)`` of the output grid, or
            ``None`` when the merged tokens no longer form a grid.
        cues (dict, optional): Per-token cue maps ``name -> [B, N']``
            (e.g. motion, edges, colour), merged like the tokens, for the
            next merge point: frame cues need the grid, which only the
            first merge sees, and computing them once per clip is cheaper
            than at every merge. ``None`` when the merger has none.
    """
    x: Tensor
    size: Tensor
    index: Tensor
    shape: Optional[Tuple[int, int, int]]
    cues: Optional[Dict[str, Tensor]] = None


@lru_cache(maxsize=32)
def _row_offsets(batch: int, num_rows: int, device: torch.device) -> Tensor:
    """``[B, 1]`` first row of every clip in a ``[B * num_rows, ...]``
    flattening (cached: asked for at every merge)."""
    with torch.inference_mode(False):
        return torch.arange(0, batch * num_rows, num_rows,
                            device=device).view(batch, 1)


def flat_index(index: Tensor, num_rows: int) -> Tensor:
    """``[B * M]`` positions in a ``[B * num_rows, ...]`` flattening of
    ``[B, num_rows, ...]`` for a ``[B, M]`` per-clip ``index``.

    Row gathers and sums along dim 1 run as ``index_select`` and
    ``index_add`` on whole contiguous rows this way; ``gather`` and
    ``scatter_add`` with an index expanded over the channels are 5-10x
    slower on CPU, forward and backward.
    """
    return (index + _row_offsets(index.shape[0], num_rows,
                                 index.device)).view(-1)  # [B * M]


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b]]`` for every clip ``b``.

    Args:
        x (Tensor): ``[B, N, ...]``.
        index (Tensor): ``LongTensor [B, M]`` with values in ``[0, N)``.

    Returns:
        Tensor: ``[B, M, ...]``.
    """
    B, N = x.shape[:2]
    rows = x.reshape(B * N, *x.shape[2:]).index_select(
        0, flat_index(index, N))
    return rows.view(B, index.shape[1], *x.shape[2:])


def sum_tokens(x: Tensor, index: Tensor, num_slots: int) -> Tensor:
    """Sum of the tokens that share a slot.

    Args:
        x (Tensor): ``[B, N, ...]`` tokens (or per-token values).
        index (Tensor): ``LongTensor [B, N]`` slot of every token, in
            ``[0, num_slots)``.
        num_slots (int): Number of output slots ``N'``.

    Returns:
        Tensor: ``[B, N', ...]``; a slot nobody joins sums to zero.
    """
    B, N = index.shape
    rows = x.reshape(B * N, -1)
    summed = rows.new_zeros(B * num_slots, rows.shape[1]).index_add_(
        0, flat_index(index, num_slots), rows)
    return summed.view(B, num_slots, *x.shape[2:])


def merge_tokens(x: Tensor, size: Optional[Tensor], index: Tensor,
                 num_slots: int) -> Tuple[Tensor, Tensor]:
    """Size-weighted average of the tokens that share a slot.

    Args:
        x (Tensor): ``[B, N, C]`` tokens.
        size (Tensor, optional): ``[B, N]`` sizes of the tokens; ``None``:
            each stands for one tubelet (a plain mean, without the
            weighting pass).
        index (Tensor): ``LongTensor [B, N]`` slot of every token, in
            ``[0, num_slots)``.
        num_slots (int): Number of output tokens ``N'``.

    Returns:
        tuple: merged tokens ``[B, N', C]`` and their sizes ``[B, N']``.
        The tokens keep ``x``'s dtype, the sizes are float32. A slot
        nobody joins gets size 0 and a zero token.
    """
    # Sums run in float32 even under bf16 autocast: bf16 counts exactly
    # only up to 256, and sizes grow with every merge.
    if size is None:
        weighted = x.float()  # [B, N, C]
        size = x.new_ones(index.shape, dtype=torch.float32)
    else:
        size = size.float()
        weighted = x.float() * size.unsqueeze(-1)  # [B, N, C]
    merged_size = sum_tokens(size, index, num_slots)  # [B, N']
    merged = sum_tokens(weighted, index, num_slots) / merged_size.clamp_min(
        torch.finfo(torch.float32).tiny).unsqueeze(-1)  # [B, N', C]
    return merged.to(x.dtype), merged_size


def unmerge(y: Tensor, index: Tensor) -> Tensor:
    """Give every input token the value of the slot it was merged into.

    Args:
        y (Tensor): ``[B, N', C']`` per-slot values (e.g. merged tokens after
            more layers).
        index (Tensor): ``LongTensor [B, N]`` from :class:`MergeInfo`.

    Returns:
        Tensor: ``[B, N, C']``.
    """
    return gather_rows(y, index)  # [B, N, C']


def compose(index_a: Tensor, index_b: Tensor) -> Tensor:
    """Chain two merges: ``index_a`` maps originals to the first merge's
    slots, ``index_b`` maps those to the second's.

    Args:
        index_a (Tensor): ``LongTensor [B, N0]`` with values in ``[0, N1)``.
        index_b (Tensor): ``LongTensor [B, N1]`` with values in ``[0, N2)``.

    Returns:
        Tensor: ``LongTensor [B, N0]``, each original token's final slot.
    """
    return index_b.gather(1, index_a)  # [B, N0]

"""The merger contract: what a merge returns and the math every merger shares.

A merge is fully described by ``index``: for every input token, the output
slot it joins. Merged values are size-weighted averages and output sizes are
sums, so merging twice equals merging once with the composed index, and any
per-token output can be spread back to the input tokens with a gather.
"""
from dataclasses import dataclass
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


def merge_tokens(x: Tensor, size: Tensor, index: Tensor,
                 num_slots: int) -> Tuple[Tensor, Tensor]:
    """Size-weighted average of the tokens that share a slot.

    Args:
        x (Tensor): ``[B, N, C]`` tokens.
        size (Tensor): ``[B, N]`` sizes of the tokens.
        index (Tensor): ``LongTensor [B, N]`` slot of every token, in
            ``[0, num_slots)``.
        num_slots (int): Number of output tokens ``N'``.

    Returns:
        tuple: merged tokens ``[B, N', C]`` and their sizes ``[B, N']``.
        The tokens keep ``x``'s dtype, the sizes are float32. A slot
        nobody joins gets size 0 and a zero token.
    """
    B, N, C = x.shape
    # Sums run in float32 even under bf16 autocast: bf16 counts exactly
    # only up to 256, and sizes grow with every merge.
    size = size.float()
    weighted = x.float() * size.unsqueeze(-1)  # [B, N, C]
    summed = weighted.new_zeros(B, num_slots, C).scatter_add(
        1, index.unsqueeze(-1).expand(B, N, C), weighted)  # [B, N', C]
    merged_size = size.new_zeros(B, num_slots).scatter_add(
        1, index, size)  # [B, N']
    merged = summed / merged_size.clamp_min(
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
    B, N = index.shape
    C = y.shape[-1]
    return y.gather(1, index.unsqueeze(-1).expand(B, N, C))  # [B, N, C']


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

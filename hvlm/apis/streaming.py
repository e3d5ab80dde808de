"""The pieces that let a long video stream through the model in flat
memory: where its clips lie, a bounded bank of the tokens seen so far, and
the per-frame outputs kept in arrays allocated once."""
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from hvlm.models.attention.cross_memory_attention import merge_plan


def clip_windows(total_frames: int, clip_len: int,
                 frame_interval: int) -> List[Tuple[int, int]]:
    """Windows of frames that cover a whole video, one clip each.

    A clip is ``clip_len`` frames ``frame_interval`` apart, so it spans
    ``span = (clip_len - 1) * frame_interval + 1`` frames. Windows of
    ``span`` frames start every ``clip_len * frame_interval`` frames, which
    puts the sampled frames of consecutive windows on one regular grid.
    When frames are left after the last such window, one more window ends
    at the last frame (it overlaps its predecessor). A video no longer than
    one span is a single window of all its frames (``SampleFrames`` then
    shrinks the interval, as it does for the datasets).

    Args:
        total_frames (int): Frames in the video (>= 1).
        clip_len (int): Frames per clip.
        frame_interval (int): Step between the frames of a clip.

    Returns:
        list[tuple[int, int]]: ``(first frame, number of frames)`` of each
        window, in time order.
    """
    if total_frames < 1:
        raise ValueError(f'total_frames={total_frames} must be >= 1')
    span = (clip_len - 1) * frame_interval + 1
    if total_frames <= span:
        return [(0, total_frames)]
    stride = clip_len * frame_interval
    starts = list(range(0, total_frames - span + 1, stride))
    if starts[-1] + stride < total_frames:
        starts.append(total_frames - span)
    return [(start, span) for start in starts]


class VideoTokenBank:
    """The tokens of every clip seen so far, kept to at most ``max_tokens``
    entries.

    Each call to :meth:`add` appends a clip's tokens and, when the bank is
    over budget, merges the most similar adjacent entries (MA-LMM's greedy
    compression, :func:`merge_plan`, the same plan that
    ``CrossMemoryAttention`` uses for its bank) until it fits. A merged
    entry is the size-weighted mean of the tokens it absorbed, its size is
    their number of tubelets (so ``log(size)`` stays the right
    proportional-attention bias) and it covers the time steps from the
    earliest first step to the latest last step among them. Memory is
    therefore bounded by ``max_tokens`` whatever the length of the video.

    Args:
        max_tokens (int): Bound on the number of entries (>= 1).
    """

    def __init__(self, max_tokens: int) -> None:
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise ValueError(
                f'max_tokens={max_tokens!r} must be a positive integer')
        self.max_tokens = max_tokens
        self.tokens: Optional[Tensor] = None  # [M, C]
        self.size: Optional[Tensor] = None  # [M]
        self.steps: Optional[Tensor] = None  # [M, 2] first, last step

    def __len__(self) -> int:
        return 0 if self.tokens is None else self.tokens.shape[0]

    @property
    def nbytes(self) -> int:
        """Bytes held by the bank's tensors."""
        if self.tokens is None:
            return 0
        return sum(t.numel() * t.element_size()
                   for t in (self.tokens, self.size, self.steps))

    def add(self, tokens: Tensor, size: Tensor, steps: Tensor) -> None:
        """Append one clip's tokens, then compress to the budget.

        Args:
            tokens (Tensor): ``[N, C]`` in temporal order.
            size (Tensor): ``[N]`` tubelets behind each token.
            steps (Tensor): ``LongTensor [N, 2]``, the first and last time
                step of the video that each token covers.
        """
        N = tokens.shape[0]
        if tuple(size.shape) != (N, ) or tuple(steps.shape) != (N, 2):
            raise ValueError(
                f'size {tuple(size.shape)} and steps {tuple(steps.shape)} '
                f'must be [N] and [N, 2] for tokens {tuple(tokens.shape)}')
        tokens = tokens.detach().float()
        size = size.detach().float()
        steps = steps.detach().long().to(tokens.device)
        if self.tokens is not None:
            tokens = torch.cat([self.tokens, tokens])  # [M + N, C]
            size = torch.cat([self.size, size])  # [M + N]
            steps = torch.cat([self.steps, steps])  # [M + N, 2]
        if tokens.shape[0] > self.max_tokens:
            group = torch.from_numpy(
                merge_plan(tokens.double().cpu().numpy(),
                           size.double().cpu().numpy(),
                           self.max_tokens)).to(tokens.device)  # [M + N]
            tokens, size, steps = self._merge(tokens, size, steps, group)
        self.tokens, self.size, self.steps = tokens, size, steps

    @staticmethod
    def _merge(tokens: Tensor, size: Tensor, steps: Tensor,
               group: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Reduce the entries of each group of ``group [M]``."""
        G, C = int(group.max()) + 1, tokens.shape[1]
        new_size = size.new_zeros(G).scatter_add(0, group, size)  # [G]
        total = tokens.new_zeros(G, C).scatter_add(
            0, group[:, None].expand(-1, C), tokens * size[:, None])  # [G, C]
        first = steps.new_zeros(G).scatter_reduce(
            0, group, steps[:, 0], 'amin', include_self=False)  # [G]
        last = steps.new_zeros(G).scatter_reduce(
            0, group, steps[:, 1], 'amax', include_self=False)  # [G]
        return (total / new_size[:, None], new_size,
                torch.stack([first, last], dim=-1))


class ClipRecord:
    """Rows that every clip of a video adds (per-frame times, scores...),
    kept in one preallocated numpy array per field.

    Appending small tensors clip after clip looks harmless, but each one is
    a separate heap allocation that lives until the end of the video,
    interleaved with the megabytes of activations that each clip allocates
    and frees. The allocator can then neither reuse those holes nor return
    them to the system, and the process grows by hundreds of kilobytes per
    clip while the data kept is a few hundred bytes
    (``tools/analysis_tools/benchmark_inference_memory.py`` measured it).
    Here a field's array is allocated at its first clip for ``num_clips``
    clips of that size and filled in place; it only grows (doubling) if a
    clip brings more rows than the first.

    Args:
        num_clips (int): Clips the video will have (>= 1).
    """

    def __init__(self, num_clips: int) -> None:
        if num_clips < 1:
            raise ValueError(f'num_clips={num_clips} must be >= 1')
        self.num_clips = num_clips
        self._arrays: Dict[str, np.ndarray] = {}
        self._filled: Dict[str, int] = {}

    def append(self, **rows: np.ndarray) -> None:
        """Copy each field's ``[n, ...]`` rows after the previous ones."""
        for name, value in rows.items():
            value = np.asarray(value)
            array = self._arrays.get(name)
            if array is None:
                array = np.empty(
                    (self.num_clips * max(len(value), 1), ) + value.shape[1:],
                    dtype=value.dtype)
                self._arrays[name], self._filled[name] = array, 0
            elif array.shape[1:] != value.shape[1:]:
                raise ValueError(
                    f'{name}: rows of shape {value.shape[1:]} after rows of '
                    f'shape {array.shape[1:]}')
            start = self._filled[name]
            end = start + len(value)
            if end > len(array):
                grown = np.empty((max(end, 2 * len(array)), ) +
                                 array.shape[1:], dtype=array.dtype)
                grown[:start] = array[:start]
                self._arrays[name] = array = grown
            array[start:end] = value
            self._filled[name] = end

    def __getitem__(self, name: str) -> np.ndarray:
        """The filled rows of ``name``, ``[n_total, ...]`` (a view)."""
        if name not in self._arrays:
            raise KeyError(f'no rows of {name!r} were appended; fields: '
                           f'{sorted(self._arrays)}')
        return self._arrays[name][:self._filled[name]]

    def __contains__(self, name: str) -> bool:
        return name in self._arrays

    @property
    def nbytes(self) -> int:
        """Bytes allocated for all fields (filled or not)."""
        return sum(a.nbytes for a in self._arrays.values())

"""How many tokens each merge keeps, and across how much time it may
merge."""
import math
from typing import List, Optional

from torch import Tensor

from hvlm.registry import MERGERS
from .motion_based_compression import check_ratios


@MERGERS.register_module()
class TemporalMergeScheduler:
    """Plans the token budget of the merges of an encoder.

    * :meth:`stage_ratios` splits an overall ratio over the merge points of
      an encoder: ``'first'`` spends it all at the first point (where
      tokens are many and a merge saves the most), ``'uniform'`` keeps the
      same share at every point (a geometric split), ``'front'`` is in
      between: the share removed falls linearly from point to point (in
      log terms, point ``i`` of ``k`` gets weight ``k - i``), so early
      blocks already run on fewer tokens while later merges can use keys
      that have seen more context.
    * :meth:`keep_count` turns the ratio into a token count that always
      respects ``[min_compression_ratio, max_compression_ratio]`` and never
      drops below the protected tokens; :meth:`keep_counts` does so for
      every merge point, so that the last one lands on exactly that count
      whatever the rounding on the way.
    * :meth:`temporal_mask` limits which frames may merge: static content
      merges *across time* (the same wall in frames 0 and 5 becomes one
      token, which keeps it coherent over time), but only inside
      consecutive windows of ``temporal_window + 1`` time steps when that
      is set, so a token never stands for moments far apart.

    Args:
        target_compression_ratio (float): Overall share of tokens kept.
        min_compression_ratio (float): Lowest share ever kept.
        max_compression_ratio (float): Highest share ever kept.
        mode (str): ``'first'``, ``'uniform'`` or ``'front'``.
        temporal_window (int, optional): Largest distance (in token time
            steps) between the frames one merged token stands for: merges
            stay inside consecutive windows of ``temporal_window + 1``
            steps; ``None``: any.
    """

    MODES = ('first', 'uniform', 'front')

    def __init__(self,
                 target_compression_ratio: float = 0.5,
                 min_compression_ratio: float = 0.25,
                 max_compression_ratio: float = 1.0,
                 mode: str = 'first',
                 temporal_window: Optional[int] = None) -> None:
        check_ratios(target_compression_ratio, min_compression_ratio,
                     max_compression_ratio)
        if mode not in self.MODES:
            raise ValueError(f'mode={mode!r} must be one of {self.MODES}')
        if temporal_window is not None and temporal_window < 0:
            raise ValueError(f'temporal_window={temporal_window} must be '
                             '>= 0 or None')
        self.target = target_compression_ratio
        self.min_ratio = min_compression_ratio
        self.max_ratio = max_compression_ratio
        self.mode = mode
        self.temporal_window = temporal_window

    def stage_ratios(self, num_mergers: int) -> List[float]:
        """Per-merge-point keep ratios whose product is the target."""
        if num_mergers < 1:
            raise ValueError(f'num_mergers={num_mergers} must be >= 1')
        if self.mode == 'first':
            return [self.target] + [1.0] * (num_mergers - 1)
        if self.mode == 'uniform':
            return [self.target**(1 / num_mergers)] * num_mergers
        weights = [num_mergers - i for i in range(num_mergers)]
        return [self.target**(w / sum(weights)) for w in weights]

    def keep_counts(self,
                    num_tokens: int,
                    num_points: int,
                    num_protected: int = 0) -> List[int]:
        """Tokens left after each of ``num_points`` merges of
        ``num_tokens`` tokens, following :meth:`stage_ratios`.

        Counts are rounded from the running product of the ratios (not
        point by point, which would let rounding errors pile up), never
        rise, and end at :meth:`keep_count`.
        """
        final = self.keep_count(num_tokens, num_protected)
        counts, share = [], 1.0
        for ratio in self.stage_ratios(num_points)[:-1]:
            share *= ratio
            counts.append(
                min(max(round(num_tokens * share), final), num_tokens))
        return counts + [final]

    def keep_count(self, num_tokens: int, num_protected: int = 0) -> int:
        """Tokens one merge keeps out of ``num_tokens``: the target rounded,
        clipped to the bounds (``ceil(N * min)`` .. ``floor(N * max)``) and
        to at least ``num_protected``."""
        low = math.ceil(num_tokens * self.min_ratio - 1e-9)
        high = math.floor(num_tokens * self.max_ratio + 1e-9)
        keep = min(max(round(num_tokens * self.target), low), high)
        return max(keep, num_protected, 1)

    def temporal_mask(self, time_a: Tensor,
                      time_b: Tensor) -> Optional[Tensor]:
        """``[B, Na, Nb]`` bool, True where a pair may merge, or ``None``
        when any pair may.

        Time is cut into consecutive windows of ``temporal_window + 1``
        steps, and tokens merge only inside one window. A pairwise
        distance test would not do: matching merges several tokens into
        one partner (and later rounds and merge points merge again), so
        frames 0 and 2 could each be within one step of frame 1 and still
        end up in one token. With fixed windows no token ever stands for
        steps further apart than ``temporal_window``, however often it
        merges.

        Args:
            time_a (Tensor): ``[B, Na]`` token time steps (for a merged
                token, any of its steps: they share one window).
            time_b (Tensor): ``[B, Nb]``.
        """
        if self.temporal_window is None:
            return None
        width = self.temporal_window + 1
        return (time_a[:, :, None] // width) == (time_b[:, None, :] // width)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(target={self.target}, '
                f'min={self.min_ratio}, max={self.max_ratio}, '
                f'mode={self.mode!r}, temporal_window={self.temporal_window})')

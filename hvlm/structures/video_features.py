"""What a video backbone hands to the heads."""
from dataclasses import dataclass
from typing import Tuple

from torch import Tensor

from .merge_info import unmerge


@dataclass
class VideoFeatures:
    """The final token set of a batch of clips plus the bookkeeping needed
    to map it back onto time and space.

    Merged tokens are no longer a grid, so heads must not reshape ``tokens``
    directly: :meth:`frame_features` and :meth:`pooled` are the two ways to
    read them that stay correct whatever merger ran.

    Attributes:
        tokens (Tensor): ``[B, N, C]`` final tokens (``B`` counts clips).
        size (Tensor): ``[B, N]`` tubelets behind each token.
        index (Tensor): ``LongTensor [B, N0]`` final slot of every tubelet
            token, ``N0 = T0 * H0 * W0``.
        grid (tuple): ``(T0, H0, W0)`` of the tubelet grid.
        temporal_patch (int): Frames per tubelet ``t``.
        num_frames (int): Frames per clip in the input (before padding).
        num_clips (int): Clips per video; the model sets it so that heads
            can regroup the ``B`` clips into ``B // num_clips`` videos.
    """
    tokens: Tensor
    size: Tensor
    index: Tensor
    grid: Tuple[int, int, int]
    temporal_patch: int
    num_frames: int
    num_clips: int = 1

    def frame_features(self, reduce: str = 'mean') -> Tensor:
        """``[B, T0, C]``: tokens spread back to the tubelet grid, then
        reduced over space (one feature per tubelet time step).

        Args:
            reduce: ``'mean'`` or ``'max'``. Max keeps what a small region
                says (an action by a small object) instead of diluting it
                over the whole frame.
        """
        if reduce not in ('mean', 'max'):
            raise ValueError(f"reduce={reduce!r} must be 'mean' or 'max'")
        T0, H0, W0 = self.grid
        B, _, C = self.tokens.shape
        x = unmerge(self.tokens, self.index)  # [B, T0*H0*W0, C]
        x = x.reshape(B, T0, H0 * W0, C)  # [B, T0, H0*W0, C]
        return x.amax(dim=2) if reduce == 'max' else x.mean(dim=2)

    def pooled(self) -> Tensor:
        """``[B, C]``: the size-weighted mean of the tokens, i.e. the mean
        over all tubelets."""
        weight = self.size.to(self.tokens.dtype).unsqueeze(-1)  # [B, N, 1]
        return (self.tokens * weight).sum(1) / weight.sum(1)  # [B, C]

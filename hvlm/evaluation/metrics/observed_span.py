"""The stretch of a video that its sampled frames show."""
from typing import Optional, Sequence, Tuple

import torch


def observed_span(frame_times: Optional[Sequence[float]]
                  ) -> Optional[Tuple[float, float]]:
    """``(first frame time, last frame time + one frame spacing)`` in
    seconds, the spacing being the median gap between the sampled frames;
    None without ``frame_times``.

    A model that samples a few clips of a long video cannot know what
    happens between them; metrics with ``observed_only=True`` score only
    the ground truth that overlaps this span, and say so.
    """
    if frame_times is None:
        return None
    times = torch.as_tensor(frame_times, dtype=torch.float64).reshape(-1)
    if times.numel() == 0:
        return None
    times = times.sort().values
    gap = float(times.diff().median()) if times.numel() > 1 else 0.
    return float(times[0]), float(times[-1]) + gap


def overlaps(start: float, end: float,
             span: Optional[Tuple[float, float]]) -> bool:
    """Whether ``[start, end]`` overlaps ``span`` (True when span is
    None: nothing to restrict to)."""
    return span is None or (start < span[1] and end > span[0])

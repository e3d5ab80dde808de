"""A per-token keep budget from motion."""
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MERGERS


@MERGERS.register_module()
class MotionBasedCompression(nn.Module):
    """Turn per-token motion into a keep budget around a target ratio.

    ``budget_i = clip(target + sensitivity * (m_i - mean(m)), min, max)``
    with ``m`` the clip's normalised motion in ``[0, 1]``. Moving tokens get
    more than the target, static ones less, and a clip without motion gets
    exactly the target everywhere. The mean budget stays close to
    ``target`` and, being a mean of clipped values, always within
    ``[min_compression_ratio, max_compression_ratio]``.

    Args:
        target_compression_ratio (float): Share of tokens kept on average.
        min_compression_ratio (float): Lowest budget of any token.
        max_compression_ratio (float): Highest budget (1.0: keep).
        sensitivity (float): How far motion moves a budget off target.
    """

    def __init__(self,
                 target_compression_ratio: float = 0.5,
                 min_compression_ratio: float = 0.25,
                 max_compression_ratio: float = 1.0,
                 sensitivity: float = 1.0) -> None:
        super().__init__()
        check_ratios(target_compression_ratio, min_compression_ratio,
                     max_compression_ratio)
        self.target = target_compression_ratio
        self.min_ratio = min_compression_ratio
        self.max_ratio = max_compression_ratio
        self.sensitivity = sensitivity

    def forward(self, motion: Tensor) -> Tensor:
        """Args:
            motion (Tensor): ``[B, N]`` motion, normalised to ``[0, 1]``
                (or any non-negative speed: the budget is clipped).

        Returns:
            Tensor: ``[B, N]`` keep budget of every token.
        """
        centred = motion - motion.mean(dim=1, keepdim=True)  # [B, N]
        budget = self.target + self.sensitivity * centred
        return budget.clamp(self.min_ratio, self.max_ratio)


def check_ratios(target: float, low: float, high: float) -> None:
    """Raise unless ``0 < low <= target <= high <= 1``."""
    if not 0 < low <= target <= high <= 1:
        raise ValueError(
            f'compression ratios must satisfy 0 < min_compression_ratio '
            f'({low}) <= target_compression_ratio ({target}) <= '
            f'max_compression_ratio ({high}) <= 1')

from .nonfinite_loss_hook import NonFiniteLossHook
from .progress_bar_hook import ProgressBarHook
from .rng_state_hook import RNGStateHook, get_rng_state, set_rng_state
from .skipped_video_hook import SkippedVideoHook

__all__ = [
    'NonFiniteLossHook', 'ProgressBarHook', 'RNGStateHook',
    'SkippedVideoHook', 'get_rng_state', 'set_rng_state'
]

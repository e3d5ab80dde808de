"""A long run on a tiny config that shows whether memory or descriptors leak.

Used by ``tools/analysis_tools/benchmark_soak.py``.
"""
from typing import Dict, List, Sequence, Tuple

from mmengine.config import Config

__all__ = ['soak_config', 'summarize_soak']


def soak_config(cfg: Config, iters: int, interval: int) -> Config:
    """Turn a training config into ``iters`` iterations with no validation,
    no checkpoints and a constant learning rate, monitored every
    ``interval`` iterations by ``ResourceMonitorHook``."""
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=iters,
                         val_interval=iters + 1)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.param_scheduler = []
    cfg.default_hooks.checkpoint = dict(
        type='CheckpointHook', interval=iters + 1, by_epoch=False,
        save_last=False)
    cfg.default_hooks.logger = dict(type='PhaseLoggerHook', interval=interval)
    cfg.log_processor = dict(type='LogProcessor', window_size=interval,
                             by_epoch=False)
    hooks = [h for h in cfg.get('custom_hooks') or []
             if h.get('type') != 'ResourceMonitorHook']
    cfg.custom_hooks = hooks + [
        dict(type='ResourceMonitorHook', interval=interval)
    ]
    return cfg


def summarize_soak(samples: Sequence[Tuple[int, float, int]],
                   warmup: int) -> Dict:
    """Growth of resident memory and descriptors after ``warmup`` iters.

    The reference is the first sample at or after ``warmup``; growth
    compares the last sample with it.
    """
    after = [s for s in samples if s[0] >= warmup]
    if len(after) < 2:
        raise ValueError(
            f'need at least two samples after warmup={warmup}, got '
            f'{len(after)}: run more iterations or sample more often')
    (it0, rss0, fd0), (it1, rss1, fd1) = after[0], after[-1]
    rows: List[Dict] = [
        dict(iter=i, rss_mb=round(r, 1), num_fds=f) for i, r, f in samples
    ]
    return dict(
        warmup_iter=it0,
        last_iter=it1,
        rss_mb_after_warmup=round(rss0, 1),
        rss_mb_last=round(rss1, 1),
        rss_growth_pct=round(100 * (rss1 - rss0) / rss0, 2),
        rss_peak_mb=round(max(r for _, r, _ in after), 1),
        fds_after_warmup=fd0,
        fds_last=fd1,
        samples=rows)
